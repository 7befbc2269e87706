// Waypoint's cluster mode: istiod workload xDS + Istio CA for its own
// identity + the Kubernetes API (list/watch, status write-back).
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "common/base/log.h"
#include "common/xds/env.h"
#include "common/identity/ca_client.h"
#include "common/identity/cert_source.h"
#include "common/net/address.h"
#include "common/xds/node.h"
#include "waypoint/app/cluster_mode.h"
#include "waypoint/app/cluster_status.h"
#include "waypoint/app/waypoint.h"

namespace ambit::waypoint {

namespace {

constexpr const char* kIstioRootCert = "/var/run/secrets/istio/root-cert.pem";
constexpr const char* kIstioToken = "/var/run/secrets/tokens/istio-token";

using xds::GetOr;
using xds::StripScheme;

void SetIf(std::map<std::string, std::string>& env, const std::string& key,
           const std::string& value) {
  if (!value.empty()) env[key] = value;
}

void DefaultFile(std::map<std::string, std::string>& env, const std::string& key,
                 const char* path) {
  if (!env.contains(key) && std::filesystem::exists(path)) env[key] = path;
}

}  // namespace

Status Waypoint::StartCluster() {
  cluster_ = std::make_unique<ClusterMode>();
  ClusterMode& c = *cluster_;
  c.env = xds::ProcessEnvironment();
  // Flags override the pod's environment (tests, or a chart that prefers args).
  SetIf(c.env, "XDS_ADDRESS", flags_.xds_address);
  SetIf(c.env, "CA_ADDRESS", flags_.ca_address);
  SetIf(c.env, "XDS_ROOT_CA", flags_.root_cert);
  SetIf(c.env, "CA_ROOT_CA", flags_.root_cert);
  SetIf(c.env, "AUTH_TOKEN", flags_.istio_token);
  SetIf(c.env, "POD_NAME", flags_.pod_name);
  SetIf(c.env, "POD_NAMESPACE", flags_.pod_namespace);
  // Istio's waypoint pod mounts these absolute paths.
  DefaultFile(c.env, "XDS_ROOT_CA", kIstioRootCert);
  DefaultFile(c.env, "CA_ROOT_CA", kIstioRootCert);
  DefaultFile(c.env, "AUTH_TOKEN", kIstioToken);
  c.pod_name = GetOr(c.env, "POD_NAME");
  c.pod_namespace = GetOr(c.env, "POD_NAMESPACE");
  c.service_account = flags_.service_account.empty() ? GetOr(c.env, "SERVICE_ACCOUNT", "default")
                                                     : flags_.service_account;
  c.gateway_name = flags_.gateway_name.empty() ? GetOr(c.env, "ISTIO_META_WORKLOAD_NAME")
                                               : flags_.gateway_name;
  if ((c.pod_name.empty() || c.pod_namespace.empty()) && flags_.workload_uid.empty()) {
    return absl::InvalidArgumentError(
        "cluster mode (no --config) needs POD_NAME and POD_NAMESPACE (or --pod-name / "
        "--pod-namespace, or --workload UID)");
  }
  ASSIGN_OR_RETURN(c.xds_config, xds::XdsConfigFromEnv(c.env));
  if (!c.xds_config.enabled) {
    return absl::InvalidArgumentError(
        "cluster mode needs istiod: XDS_ADDRESS is empty (or pass --config for standalone mode)");
  }
  io::Loop& loop = runtime_->main_loop();
  const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(flags_.cert_ttl);

  // The waypoint's own certificate: its pod identity, no impersonation.
  if (GetOr(c.env, "FAKE_CA") == "true") {
    const std::string ca_dir = flags_.ca_dir.empty() ? "/var/lib/ambit/ca" : flags_.ca_dir;
    ASSIGN_OR_RETURN(auto ca, identity::BuiltinCa::LoadFromDir(ca_dir));
    ca_.emplace(std::move(ca));
    cert_source_ = std::make_unique<identity::BuiltinCertSource>(loop, *ca_, ttl);
    c.ca_description = "built-in CA in " + ca_dir + " (FAKE_CA=true)";
  } else {
    identity::IstioCaOptions o;
    o.address = StripScheme(GetOr(c.env, "CA_ADDRESS", c.xds_config.grpc.address));
    o.root_ca = GetOr(c.env, "CA_ROOT_CA", kIstioRootCert);
    o.alt_hostname = GetOr(c.env, "ALT_CA_HOSTNAME");
    o.auth_token = xds::AuthTokenFromEnv(c.env);
    o.cluster_id = c.xds_config.client.node.cluster_id;
    for (const auto& [key, value] : c.env) {
      if (key.starts_with("CA_HEADER_") && key.size() > 10) {
        o.extra_headers.emplace_back(key.substr(10), value);
      }
    }
    o.impersonate = false;
    o.cert_ttl = ttl;
    c.ca_description = "Istio CA at " + o.address;
    ASSIGN_OR_RETURN(cert_source_, identity::IstioCaClient::Create(loop, std::move(o)));
  }
  secrets_ = std::make_unique<identity::SecretManager>(loop, *cert_source_);
  secrets_->Subscribe([this](const identity::Identity& id, const identity::CertPtr& cert) {
    OnCertificate(id, cert);
  });

  // Workloads, services, L4 authorization: istiod's workload xDS.
  c.store = std::make_unique<mesh::WorkloadStore>(GetOr(c.env, "NODE_NAME"));
  c.sink = std::make_unique<xds_adapters::XdsStateSink>(
      *c.store, [this](std::shared_ptr<const mesh::Snapshot> snap) {
        OnClusterSnapshot(std::move(snap));
      });
  c.sink->set_on_ready([this] { ReconcileCluster(); });
  ASSIGN_OR_RETURN(c.xds, xds::DeltaXdsClient::CreateGrpc(loop, c.xds_config.client,
                                                          c.xds_config.grpc, *c.sink));

  // L7 resources: the Kubernetes API.
  kube::ApiServerOptions api;
  if (!flags_.kube_api.empty()) {
    ASSIGN_OR_RETURN(api, kube::ParseApiServerUrl(flags_.kube_api));
  } else {
    const std::string host = GetOr(c.env, "KUBERNETES_SERVICE_HOST");
    if (host.empty()) {
      return absl::InvalidArgumentError(
          "cluster mode needs the Kubernetes API: KUBERNETES_SERVICE_HOST is unset (or pass "
          "--kube-api URL)");
    }
    ASSIGN_OR_RETURN(api, kube::ParseApiServerUrl(
                              fmt::format("https://{}:{}", host.find(':') != std::string::npos
                                                               ? "[" + host + "]"
                                                               : host,
                                          GetOr(c.env, "KUBERNETES_SERVICE_PORT", "443"))));
  }
  api.ca_file = flags_.kube_ca;
  api.token_file = flags_.kube_token;
  const size_t control = runtime_->worker_count();
  kube::WatcherCounters wc;
  wc.events = &registry_->AddCounter("ambit_kube_watch_events",
                                     "Kubernetes watch events received, by kind and type",
                                     {"kind", "type"});
  wc.relists = &registry_->AddCounter(
      "ambit_kube_relists",
      "Kubernetes re-lists, by kind and reason (gone: 410 Gone or a dropped stream; error: "
      "the previous list failed)",
      {"kind", "reason"});
  wc.errors = &registry_->AddCounter(
      "ambit_kube_errors",
      "Kubernetes API errors by kind and reason (forbidden, not_served, connect, watch, "
      "watch_error, http, "
      "json, shape, unknown_type, wrong_kind, too_large)",
      {"kind", "reason"});
  wc.shard = control;
  auto& writes = registry_->AddCounter("ambit_kube_status_writes",
                                       "Status write-backs (merge patch), by kind and result",
                                       {"kind", "result"});
  c.watcher = std::make_unique<kube::KubeWatcher>(
      api, kube::DefaultKinds(), kube::WatcherOptions{}, wc, [this] {
        if (!cluster_->change_posted.exchange(true)) {
          runtime_->PostToMain([this] {
            cluster_->change_posted.store(false);
            ReconcileCluster();
          });
        }
      });
  if (flags_.write_status) {
    c.status = std::make_unique<kube::StatusWriter>(api, &writes, control);
  }
  AMBIT_LOG(kInfo, "waypoint",
            "cluster mode: pod {}/{} (gateway {}), xDS from {}, certificates from {}, "
            "Kubernetes API at {}",
            c.pod_namespace, c.pod_name, c.gateway_name.empty() ? "-" : c.gateway_name,
            c.xds_config.grpc.address, c.ca_description, api.ToString());
  c.xds->Start();
  c.watcher->Start();
  if (c.status) c.status->Start();
  return absl::OkStatus();
}

void Waypoint::StopCluster() {
  if (!cluster_ || cluster_->stopped) return;
  cluster_->stopped = true;
  if (cluster_->watcher) cluster_->watcher->Stop();
  if (cluster_->status) cluster_->status->Stop();
  cluster_->xds.reset();  // cancels the stream, joins its thread
}

void Waypoint::OnClusterSnapshot(std::shared_ptr<const mesh::Snapshot> snap) {
  cluster_->snapshot = std::move(snap);
  ReconcileCluster();
}

void Waypoint::ReconcileCluster() {
  if (!cluster_ || cluster_->stopped || draining_) return;
  ClusterMode& c = *cluster_;
  if (!c.snapshot || !c.sink->ready() || !c.watcher->synced()) return;
  // This pod's workload, as istiod sends it.
  std::optional<mesh::Workload> self;
  if (!flags_.workload_uid.empty()) {
    if (const mesh::Workload* w = c.snapshot->FindWorkload(flags_.workload_uid)) self = *w;
  } else {
    for (const auto& [uid, w] : c.snapshot->workloads()) {
      if (w.name == c.pod_name && w.ns == c.pod_namespace) {
        self = w;
        break;
      }
    }
  }
  if (!self) {
    // istiod did not send it (yet): serve as the pod the environment describes.
    mesh::Workload w;
    w.name = c.pod_name;
    w.ns = c.pod_namespace;
    w.uid = fmt::format("{}//Pod/{}/{}", c.xds_config.client.node.cluster_id, w.ns, w.name);
    w.service_account = c.service_account;
    w.trust_domain = GetOr(c.env, "TRUST_DOMAIN", "cluster.local");
    for (const std::string& ip : c.xds_config.client.node.instance_ips) {
      if (auto a = net::IpAddress::Parse(ip); a.ok()) w.addresses.push_back(*a);
    }
    if (!c.self_synthesized) {
      AMBIT_LOG(kWarn, "waypoint",
                "workload {}/{} is not in istiod's xDS; serving as {} from the environment",
                w.ns, w.name, w.Identity());
    }
    c.self_synthesized = true;
    self = std::move(w);
  } else {
    c.self_synthesized = false;
  }
  std::vector<kube::KubeObject> objects = c.watcher->Objects();
  std::vector<std::string> errors;
  config::LocalConfig cfg = c.converter.Convert(objects, &errors);
  for (const auto& e : errors) {
    if (std::find(c.object_errors.begin(), c.object_errors.end(), e) == c.object_errors.end()) {
      AMBIT_LOG(kWarn, "kube", "object skipped: {}", e);
    }
  }
  c.object_errors = errors;
  for (const auto& e : errors) cfg.warnings.push_back("object skipped: " + e);
  for (const auto& k : c.watcher->Status()) {
    if (k.state == kube::KindState::kForbidden || k.state == kube::KindState::kNotServed) {
      cfg.warnings.push_back(fmt::format("kube: {} not watched ({}): {}", k.kind,
                                         kube::KindStateName(k.state), k.last_error));
    }
  }
  Status st = Apply(cfg, c.snapshot, *self);
  if (st.ok()) {
    reloads_ok_->Inc();
    config_ready_.store(true);
    c.apply_error.clear();
  } else {
    reloads_failed_->Inc();
    if (c.apply_error != st.message()) {
      AMBIT_LOG(kError, "config", "Kubernetes config rejected, keeping the last good config: {}",
                st.ToString());
    }
    c.apply_error = std::string(st.message());
  }
  if (c.status && !c.gateway_name.empty() && c.pod_namespace.size()) {
    StatusInputs in;
    in.objects = &objects;
    in.snapshot = c.snapshot.get();
    in.self = &*self;
    in.gateway_name = c.gateway_name;
    in.gateway_namespace = c.pod_namespace;
    in.findings = &route_findings_list_;
    in.applied = st;
    in.now = Rfc3339Now();
    for (StatusPatch& p : ComputeStatusPatches(in)) {
      c.status->Submit(p.kind, p.path, std::move(p.body));
    }
  }
}

nlohmann::json Waypoint::ClusterDump() const {
  using nlohmann::json;
  if (!cluster_) return nullptr;
  const ClusterMode& c = *cluster_;
  json out = {{"podName", c.pod_name},
              {"podNamespace", c.pod_namespace},
              {"gatewayName", c.gateway_name},
              {"xdsAddress", c.xds_config.grpc.address},
              {"caAddress", c.ca_description},
              {"xdsReady", c.sink && c.sink->ready()},
              {"selfFromEnvironment", c.self_synthesized},
              {"lastRejected", c.apply_error}};
  if (c.watcher) {
    json kube = {{"apiServer", c.watcher->api().ToString()}, {"synced", c.watcher->synced()}};
    json kinds = json::array();
    for (const kube::KindStatus& k : c.watcher->Status()) {
      kinds.push_back({{"kind", k.kind},
                       {"apiVersion", k.api_version},
                       {"state", kube::KindStateName(k.state)},
                       {"synced", k.synced},
                       {"resourceVersion", k.resource_version},
                       {"objects", k.objects},
                       {"events", k.events},
                       {"lists", k.lists},
                       {"relists", k.relists},
                       {"errors", k.errors},
                       {"lastError", k.last_error}});
    }
    kube["kinds"] = kinds;
    json skipped = json::array();
    for (const auto& e : c.object_errors) skipped.push_back(e);
    kube["skippedObjects"] = skipped;
    if (c.status) {
      kube::StatusWriter::Stats s = c.status->stats();
      kube["statusWrites"] = {{"ok", s.ok}, {"failed", s.failed}, {"lastError", s.last_error}};
    }
    out["kubernetes"] = kube;
  }
  return out;
}

}  // namespace ambit::waypoint
