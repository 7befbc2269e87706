// Standalone mode: a watched local config file (ztunnel's LOCAL_XDS_PATH
// format plus Istio AuthorizationPolicy/PeerAuthentication documents) and the
// built-in CA. Pods are this node's workloads that name a `netns` path.
#include <algorithm>
#include <filesystem>

#include "agent/app/agent.h"
#include "common/authz/apply_local.h"
#include "common/mesh/from_config.h"
#include "common/mesh/waypoint_binding.h"
#include "common/base/log.h"
#include "common/config/loader.h"

namespace ambit::agent {

namespace {

// The local config format does not default these (ISTIO-COMPAT §9.2 note);
// identities need them, so the agent applies the xDS defaults.
config::LocalConfig WithIdentityDefaults(const config::LocalConfig& in) {
  config::LocalConfig out = in;
  for (auto& w : out.workloads) {
    if (w.trust_domain.empty()) w.trust_domain = "cluster.local";
    if (w.service_account.empty()) w.service_account = "default";
  }
  return out;
}

}  // namespace

Status Agent::StartStandalone() {
  // Built-in CA: load it, or create it on first start.
  std::string ca_dir = flags_.ca_dir.empty() ? "/var/lib/ambit/ca" : flags_.ca_dir;
  bool created = false;
  ASSIGN_OR_RETURN(auto ca, identity::BuiltinCa::LoadOrCreateInDir(ca_dir, &created));
  if (created) AMBIT_LOG(kInfo, "agent", "created a new built-in CA in {}", ca_dir);
  ca_.emplace(std::move(ca));
  auto ttl = std::chrono::duration_cast<std::chrono::seconds>(flags_.cert_ttl);
  cert_source_ = std::make_unique<identity::BuiltinCertSource>(runtime_->main_loop(), *ca_, ttl);
  secrets_ = std::make_unique<identity::SecretManager>(runtime_->main_loop(), *cert_source_);

  watcher_ = std::make_unique<config::FileWatcher>(
      flags_.config_path,
      [this](const StatusOr<std::shared_ptr<const config::LocalConfig>>& r) {
        runtime_->PostToMain([this, r]() { OnConfig(r); });
      });
  auto first = config::LoadLocalConfigFile(flags_.config_path);
  if (!first.ok()) return first.status();
  RETURN_IF_ERROR(Reconcile(*first));
  reloads_ok_->Inc();
  config_ready_.store(true);
  return watcher_->Start();
}

void Agent::OnConfig(const StatusOr<std::shared_ptr<const config::LocalConfig>>& result) {
  if (draining_) return;
  if (!result.ok()) {
    reloads_failed_->Inc();
    AMBIT_LOG(kError, "config", "config reload failed, keeping the last good config: {}",
              result.status().ToString());
    return;
  }
  Status st = Reconcile(**result);
  if (!st.ok()) {
    reloads_failed_->Inc();
    AMBIT_LOG(kError, "config", "config rejected, keeping the last good config: {}", st.ToString());
    return;
  }
  reloads_ok_->Inc();
}

Status Agent::Reconcile(const config::LocalConfig& raw) {
  config::LocalConfig cfg = WithIdentityDefaults(raw);
  for (const auto& w : cfg.warnings) AMBIT_LOG(kWarn, "config", "{}", w);
  mesh::WorkloadStore store(flags_.node);
  std::vector<std::string> config_findings;
  RETURN_IF_ERROR(mesh::ApplyLocalConfig(cfg, &store, &config_findings));
  // Istio AuthorizationPolicy / PeerAuthentication documents of the file.
  ASSIGN_OR_RETURN(authz::TranslateResult tr, authz::ApplyIstioResources(cfg, &store));
  for (const auto& f : tr.findings) {
    AMBIT_LOG(kWarn, "authz", "{}", f.ToString());
    // New unless the previous good config had it too (its line may have moved).
    const bool known = std::any_of(findings_.begin(), findings_.end(), [&](const auto& old) {
      return old.kind == f.kind && old.resource == f.resource && old.message == f.message;
    });
    if (!known) policy_findings_reported_->Inc();
  }
  policy_findings_->Set(static_cast<int64_t>(tr.findings.size()));
  findings_ = std::move(tr.findings);
  for (const auto& f : config_findings) {
    AMBIT_LOG(kWarn, "config", "{}", f);
    if (std::find(config_findings_.begin(), config_findings_.end(), f) == config_findings_.end()) {
      config_findings_reported_->Inc();
    }
  }
  config_findings_gauge_->Set(static_cast<int64_t>(config_findings.size()));
  config_findings_ = std::move(config_findings);
  std::shared_ptr<const mesh::Snapshot> snap = store.Build();

  std::map<std::string, const mesh::Workload*> desired;
  for (const auto& [uid, w] : snap->workloads()) {
    if (w.node != flags_.node || w.netns.empty()) continue;
    // A waypoint's pod is never captured (istiod gives it dataplane-mode
    // none), except in the sandwich form where the agent terminates HBONE
    // for it and hands streams over through the application tunnel.
    if (mesh::IsWaypointInstance(w) && !w.application_tunnel) continue;
    desired[uid] = &w;
  }
  // Pods that left (or moved to another netns): immediate teardown.
  std::vector<std::string> gone;
  for (const auto& [uid, rec] : pods_) {
    auto d = desired.find(uid);
    if (d == desired.end() || d->second->netns != rec.spec.netns_label) gone.push_back(uid);
  }
  for (const auto& uid : gone) RemovePod(uid);
  OnSnapshot(snap);
  for (const auto& [uid, w] : desired) {
    if (HasPod(uid)) continue;
    Status st = [&]() -> Status {
      ASSIGN_OR_RETURN(net::NetnsHandle ns, net::NetnsHandle::Open(w->netns));
      PodSpec spec{uid, w->name, w->ns, w->service_account,
                   std::make_shared<const net::NetnsHandle>(std::move(ns)), w->netns,
                   flags_.redirect == "auto"};
      return AddPod(std::move(spec));
    }();
    if (!st.ok()) {
      pod_errors_->Inc();
      AMBIT_LOG(kError, "capture", "cannot capture pod {} ({}): {}", w->name, uid, st.ToString());
    }
  }
  AMBIT_LOG(kInfo, "config", "config applied: {} workloads, {} services, {} policies; {} pods captured",
            snap->workloads().size(), snap->services().size(), snap->policies().size(), pods_.size());
  return absl::OkStatus();
}

}  // namespace ambit::agent
