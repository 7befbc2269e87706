// Captured pods: listeners in the pod's netns, certificate, PodContext for the
// workers. Shared by the standalone and Istio configuration sources.
//
// A pod goes through: AddPod (listeners opened, not accepting; certificate
// requested) → Up (certificate arrived: PodContext published, listeners handed
// to the workers) → RemovePod (immediate teardown). Connections that arrive
// before Up wait in the listen backlog, so nothing is refused while the CA
// answers.
#include <fmt/format.h>

#include <fstream>

#include "agent/app/agent.h"
#include "agent/capture/redirect_installer.h"
#include "common/base/log.h"
#include "common/net/socket.h"

namespace ambit::agent {

namespace {

constexpr uint16_t kPorts[3] = {15001, 15006, 15008};
constexpr std::string_view kDefaultTrustDomain = "cluster.local";

std::string PolicyFingerprint(const mesh::Snapshot& snap) {
  // Cheap change detector: keys plus rule counts plus workloads' policy refs.
  std::string fp;
  for (const auto& [key, p] : snap.policies()) {
    fp += fmt::format("{}:{}:{}:{};", key, static_cast<int>(p.action), p.rules.size(), p.dry_run);
  }
  for (const auto& [uid, w] : snap.workloads()) {
    for (const auto& ref : w.authorization_policies) fp += uid + "=" + ref + ";";
  }
  return fp;
}

// A replaced SO_REUSEPORT listener (agent upgrade: old and new process share
// the in-pod ports) hands its queued connections to the survivor instead of
// resetting them (Linux ≥ 5.14). Best effort: older kernels lack the sysctl.
void EnableListenerMigration() {
  std::ofstream f("/proc/sys/net/ipv4/tcp_migrate_req");
  if (f) f << "1\n";
}

}  // namespace

mesh::Workload Agent::MatchWorkload(const PodSpec& spec) const {
  if (snapshot_) {
    if (const mesh::Workload* w = snapshot_->FindWorkload(spec.uid)) return *w;
    // ZDS pods carry a Kubernetes UID: match the xDS workload of this node by
    // (name, namespace, service account) (ISTIO-COMPAT §5.6).
    for (const mesh::Workload* w : snapshot_->FindLocalWorkloads(spec.ns, spec.service_account)) {
      if (w->name == spec.name) return *w;
    }
  }
  // Not (yet) known to the control plane: what ZDS told us.
  mesh::Workload w;
  w.uid = spec.uid;
  w.name = spec.name;
  w.ns = spec.ns;
  w.service_account = spec.service_account.empty() ? "default" : spec.service_account;
  w.trust_domain = std::string(kDefaultTrustDomain);
  w.node = flags_.node;
  w.workload_name = spec.name;
  return w;
}

Status Agent::AddPod(PodSpec spec) {
  if (draining_) return absl::UnavailableError("the agent is draining");
  if (auto it = pods_.find(spec.uid); it != pods_.end()) {
    if (it->second.spec.netns && spec.netns && it->second.spec.netns->SameAs(*spec.netns)) {
      return absl::OkStatus();  // same pod, same netns: nothing to do
    }
    AMBIT_LOG(kInfo, "capture", "pod {} moved to another network namespace: replacing it", spec.uid);
    RemovePod(spec.uid);
  }
  mesh::Workload workload = MatchWorkload(spec);
  std::string_view td = workload.trust_domain.empty() ? kDefaultTrustDomain
                                                      : std::string_view(workload.trust_domain);
  ASSIGN_OR_RETURN(identity::Identity id,
                   identity::Identity::Make(td, spec.ns, workload.service_account));
  PodRecord rec{std::move(spec), nullptr, std::move(workload), id, std::nullopt, false};
  if (rec.spec.install_redirect) {
    auto backend = ::ambit::capture::ParseRuleBackend(flags_.redirect_backend);
    auto mode = ::ambit::capture::ParseRedirectMode(flags_.redirect_mode);
    ::ambit::capture::RedirectConfig rc;
    if (mode.ok()) rc.mode = *mode;
    rc.ztunnel_mark = flags_.packet_mark;
    // istio-cni's ambient.dnsCapture (default on): DNS to the proxy.
    rc.dns_capture = dns_listen_.has_value();
    if (dns_listen_) rc.dns_port = dns_listen_->port;
    // IPv6 rules (ip6tables / ip6 matches, ip -6 rule + local route) whenever
    // IPv6 is on in the pod, as istio-cni does; IPV6_ENABLED=false: IPv4 only.
    if (flags_.ztunnel.ipv6_enabled) {
      auto v6 = ::ambit::capture::Ipv6EnabledIn(*rec.spec.netns);
      rc.ipv6 = v6.ok() && *v6;
    }
    Status rs = backend.ok() ? ::ambit::capture::InstallRedirection(*rec.spec.netns, *backend, rc)
                             : backend.status();
    if (!rs.ok()) {
      pod_errors_->Inc();
      AMBIT_LOG(kError, "capture", "installing redirection for pod {}: {}", rec.spec.uid,
                rs.ToString());
    } else {
      rec.redirect_installed = true;
    }
  }
  Status ls = OpenListeners(rec);
  if (ls.ok()) ls = OpenDnsSockets(rec);
  if (!ls.ok()) {
    if (rec.redirect_installed) {
      auto backend = ::ambit::capture::ParseRuleBackend(flags_.redirect_backend);
      if (backend.ok()) (void)::ambit::capture::RemoveRedirection(*rec.spec.netns, *backend);
    }
    return ls;
  }
  const std::string uid = rec.spec.uid;
  pods_.insert_or_assign(uid, std::move(rec));
  PublishDns();
  HandDnsToWorkers(pods_.at(uid));
  if (identity::CertPtr cert = secrets_->Lookup(id)) {
    OnCertificate(id, cert);
  } else {
    AMBIT_LOG(kInfo, "identity", "requesting a certificate for {} (pod {})", id.ToString(), uid);
    secrets_->Prefetch(id, identity::CertPriority::kRealTime);
  }
  UpdatePendingGauge();
  CheckReady();
  return absl::OkStatus();
}

namespace {

// ENABLE_ORIG_SRC: true fails the pod when IP_TRANSPARENT is refused, false
// does not ask for it, unset tries.
net::Transparent ListenerTransparency(OrigSrc mode) {
  switch (mode) {
    case OrigSrc::kRequired: return net::Transparent::kRequired;
    case OrigSrc::kOff: return net::Transparent::kOff;
    case OrigSrc::kAuto: break;
  }
  return net::Transparent::kBestEffort;
}

}  // namespace

Status Agent::OpenListeners(PodRecord& rec) {
  std::vector<std::array<net::Fd, 3>> per_worker(workers_.size());
  for (size_t i = 0; i < workers_.size(); ++i) {
    for (size_t k = 0; k < 3; ++k) {
      net::ListenerOptions lo;
      // IPV6_ENABLED (default): one dual-stack [::] socket, as ztunnel binds.
      lo.address = net::SocketAddress(
          *net::IpAddress::Parse(flags_.ztunnel.ipv6_enabled ? "::" : "0.0.0.0"), kPorts[k]);
      lo.backlog = 128;
      lo.reuse_port = true;
      lo.transparent = ListenerTransparency(flags_.ztunnel.orig_src);
      lo.mark = flags_.packet_mark;
      ASSIGN_OR_RETURN(per_worker[i][k], netns_runner_->Run(*rec.spec.netns, [lo]() {
        if (lo.address.port() == kPorts[0]) EnableListenerMigration();
        return net::CreateTcpListener(lo);
      }));
    }
  }
  rec.listeners = std::move(per_worker);
  return absl::OkStatus();
}

void Agent::HandListenersToWorkers(PodRecord& rec) {
  if (!rec.listeners) return;
  for (size_t i = 0; i < workers_.size(); ++i) {
    auto fds = std::make_shared<std::array<net::Fd, 3>>(std::move((*rec.listeners)[i]));
    std::string uid = rec.spec.uid;
    runtime_->PostToWorker(i, [this, i, uid, fds](io::Loop&) {
      workers_[i]->AddPod(uid, std::move(*fds));
    });
  }
  rec.listeners.reset();
  pods_started_->Inc();
  AMBIT_LOG(kInfo, "capture", "capturing pod {}/{} ({}) in {} as {}", rec.spec.ns, rec.spec.name,
            rec.spec.uid, rec.spec.netns_label, rec.identity.ToString());
}

void Agent::RefreshPod(PodRecord& rec) {
  auto it = tls_.find(rec.identity.ToString());
  if (it == tls_.end()) {
    // The certificate of a new identity is on its way: keep serving with the
    // current one, with the updated workload facts.
    if (rec.ctx) {
      auto ctx = std::make_shared<PodContext>(*rec.ctx);
      ctx->workload = rec.workload;
      rec.ctx = ctx;
    }
    return;
  }
  rec.ctx = std::make_shared<const PodContext>(PodContext{rec.spec.uid, rec.workload, rec.spec.netns,
                                                          rec.identity, it->second.server,
                                                          it->second.client});
}

void Agent::OnCertificate(const identity::Identity& id, const identity::CertPtr& cert) {
  const std::string key = id.ToString();
  auto& pair = tls_[key];
  if (pair.cert != cert) {  // a new certificate (not the one a new pod asks about again)
    tls::TlsOptions to;
    to.crls = crls_;
    auto server = tls::MakeServerContext(*cert, to);
    auto client = server.ok() ? tls::MakeClientContext(*cert, to) : server.status();
    if (!server.ok() || !client.ok()) {
      pod_errors_->Inc();
      AMBIT_LOG(kError, "identity", "certificate for {} is unusable: {} (the current one stays in use)",
                key, (server.ok() ? client.status() : server.status()).ToString());
      if (pair.cert == nullptr) tls_.erase(key);
      return;
    }
    AMBIT_LOG(kInfo, "identity", "{} certificate for {} from {} (serial {})",
              pair.cert != nullptr ? "rotated" : "got", key, cert_source_->name(), cert->serial_hex);
    pair = {cert, *server, *client};
  }
  for (auto& [uid, rec] : pods_) {
    if (rec.identity == id) RefreshPod(rec);
  }
  Publish(false);
  StartReadyPods();
  UpdatePendingGauge();
  CheckReady();
}

void Agent::StartReadyPods() {
  // A pod serves once it has its certificate AND the first workload config:
  // before that, connections wait in the listen backlog (nothing goes out
  // unsecured or unrouted). Publish() ran first, so workers know the pod.
  if (snapshot_ == nullptr) return;
  for (auto& [uid, rec] : pods_) {
    if (rec.ctx && rec.listeners) HandListenersToWorkers(rec);
  }
}

void Agent::OnSnapshot(std::shared_ptr<const mesh::Snapshot> snap) {
  snapshot_ = std::move(snap);
  authz_index_ = authz::AuthzIndex::Build(snapshot_->policies(), snapshot_->workloads());
  for (auto& [uid, rec] : pods_) {
    mesh::Workload w = MatchWorkload(rec.spec);
    std::string_view td = w.trust_domain.empty() ? kDefaultTrustDomain : std::string_view(w.trust_domain);
    auto id = identity::Identity::Make(td, rec.spec.ns, w.service_account);
    rec.workload = std::move(w);
    if (id.ok() && !(*id == rec.identity)) {
      AMBIT_LOG(kInfo, "identity", "pod {} now runs as {} (was {})", uid, id->ToString(),
                rec.identity.ToString());
      rec.identity = *id;
      if (identity::CertPtr cert = secrets_->Lookup(*id); cert == nullptr) {
        secrets_->Prefetch(*id, identity::CertPriority::kRealTime);
      } else if (tls_.count(id->ToString()) == 0) {
        runtime_->main_loop().Post([this, i = *id, cert] { OnCertificate(i, cert); });
      }
    }
    RefreshPod(rec);
  }
  // Warm the certificates of this node's workloads before their pods are
  // announced (ISTIO-COMPAT §6.2 prefetch); kept until no such workload or pod.
  for (const std::string& id : LocalWorkloadIdentities()) {
    auto parsed = identity::Identity::Parse(id);
    if (parsed.ok() && secrets_->Lookup(*parsed) == nullptr) {
      secrets_->Prefetch(*parsed, identity::CertPriority::kWarmup);
    }
  }
  std::string fp = PolicyFingerprint(*snapshot_);
  bool policies_changed = fp != policy_fingerprint_;
  policy_fingerprint_ = fp;
  Publish(policies_changed);
  StartReadyPods();
  ForgetUnusedIdentities();
  CheckReady();
}

void Agent::RemovePod(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  for (size_t i = 0; i < workers_.size(); ++i) {
    runtime_->PostToWorker(i, [this, i, uid](io::Loop&) { workers_[i]->RemovePod(uid); });
  }
  RemovePodDns(uid);
  if (it->second.redirect_installed) {
    auto backend = ::ambit::capture::ParseRuleBackend(flags_.redirect_backend);
    if (backend.ok()) {
      Status rs = ::ambit::capture::RemoveRedirection(*it->second.spec.netns, *backend);
      if (!rs.ok()) AMBIT_LOG(kWarn, "capture", "removing rules of {}: {}", uid, rs.ToString());
    }
  }
  if (!it->second.listeners) pods_stopped_->Inc();
  AMBIT_LOG(kInfo, "capture", "stopped capturing pod {}/{} ({})", it->second.spec.ns,
            it->second.spec.name, uid);
  pods_.erase(it);
  Publish(false);
  ForgetUnusedIdentities();
  UpdatePendingGauge();
  CheckReady();
}

std::set<std::string> Agent::LocalWorkloadIdentities() const {
  std::set<std::string> ids;
  if (!istio_ || !snapshot_) return ids;  // standalone: pods are the local workloads
  for (const auto& [uid, w] : snapshot_->workloads()) {
    if (w.node != flags_.node) continue;
    std::string_view td = w.trust_domain.empty() ? kDefaultTrustDomain : std::string_view(w.trust_domain);
    auto id = identity::Identity::Make(td, w.ns, w.service_account.empty() ? "default" : w.service_account);
    if (id.ok()) ids.insert(id->ToString());
  }
  return ids;
}

void Agent::ForgetUnusedIdentities() {
  std::set<std::string> used = LocalWorkloadIdentities();
  for (const auto& [uid, rec] : pods_) {
    used.insert(rec.identity.ToString());
    if (rec.ctx) used.insert(rec.ctx->identity.ToString());
  }
  for (const auto& d : secrets_->Dump()) {
    if (used.count(d.identity.ToString()) == 0) {
      AMBIT_LOG(kInfo, "identity", "no pod runs as {} any more: forgetting its certificate",
                d.identity.ToString());
      secrets_->Forget(d.identity);
      tls_.erase(d.identity.ToString());
    }
  }
}

void Agent::UpdatePendingGauge() {
  int no_cert = 0, serving = 0;
  for (const auto& [uid, rec] : pods_) {
    if (!rec.ctx) ++no_cert;
    if (rec.ctx && !rec.listeners) ++serving;
  }
  pods_pending_.store(no_cert);  // readiness: "certificates(N)"
  pods_pending_gauge_->Set(static_cast<int64_t>(pods_.size()) - serving);
  pods_active_->Set(serving);
}

}  // namespace ambit::agent
