#include "agent/app/istio_mode.h"

#include "agent/app/agent.h"
#include "agent/capture/zds_client.h"
#include "common/mesh/xds_adapters/sink.h"
#include "common/base/log.h"
#include "common/xds/env.h"
#include "common/xds/client.h"

namespace ambit::agent {

namespace {

using xds::GetOr;
using xds::StripScheme;

// ztunnel's reasons for istio_xds_connection_terminations_total.
std::string TerminationReason(const Status& st) {
  if (st.ok()) return "Complete";
  if (absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st)) return "ConnectionError";
  if (absl::IsCancelled(st)) return "Reconnect";
  return "Error";
}

}  // namespace

StatusOr<identity::IstioCaOptions> CaOptionsFromEnv(const std::map<std::string, std::string>& env,
                                                    const xds::XdsEnvConfig& xds) {
  identity::IstioCaOptions o;
  o.address = StripScheme(GetOr(env, "CA_ADDRESS", xds.grpc.address));
  if (o.address.empty()) {
    return absl::InvalidArgumentError(
        "no certificate authority: CA_ADDRESS is empty and XDS_ADDRESS is disabled "
        "(set CA_ADDRESS, or FAKE_CA=true to use the built-in CA of --ca-dir)");
  }
  o.root_ca = GetOr(env, "CA_ROOT_CA", "./var/run/secrets/istio/root-cert.pem");
  o.alt_hostname = GetOr(env, "ALT_CA_HOSTNAME");
  o.auth_token = xds::AuthTokenFromEnv(env);
  o.cluster_id = xds.client.node.cluster_id;
  for (const auto& [key, value] : env) {
    if (key.starts_with("CA_HEADER_") && key.size() > 10) o.extra_headers.emplace_back(key.substr(10), value);
  }
  o.impersonate = true;
  return o;
}

// Counts what the control plane sends, then hands it to the state sink.
class IstioControl::XdsMetricsHandler final : public xds::XdsHandler {
 public:
  XdsMetricsHandler(Agent& agent, xds_adapters::XdsStateSink& sink, metrics::Registry& reg,
                    size_t shard)
      : agent_(agent),
        sink_(sink),
        shard_(shard),
        messages_(reg.AddCounter("istio_xds_message", "xDS responses received", {"url"})),
        bytes_(reg.AddCounter("istio_xds_message_bytes", "Bytes of xDS resources received", {"url"})),
        terminations_(reg.AddCounter("istio_xds_connection_terminations",
                                     "xDS streams that ended", {"reason"})),
        rejected_(reg.AddCounter("ambit_xds_rejected_resources",
                                 "xDS resources NACKed because they were invalid", {"url"})) {}

  std::vector<xds::ResourceError> OnResources(std::string_view type_url,
                                              std::vector<xds::XdsResource> added,
                                              std::vector<std::string> removed) override {
    const std::string url(type_url);
    uint64_t bytes = 0;
    for (const auto& r : added) bytes += r.resource.ByteSizeLong();
    messages_.Get(shard_, {url})->Inc();
    bytes_.Get(shard_, {url})->Inc(bytes);
    std::vector<xds::ResourceError> errors =
        sink_.OnResources(type_url, std::move(added), std::move(removed));
    if (!errors.empty()) rejected_.Get(shard_, {url})->Inc(errors.size());
    return errors;
  }
  void OnReady() override {
    sink_.OnReady();
    agent_.config_ready_.store(true);
    agent_.CheckReady();
  }
  void OnStreamError(const Status& status) override {
    terminations_.Get(shard_, {TerminationReason(status)})->Inc();
    sink_.OnStreamError(status);
  }

 private:
  Agent& agent_;
  xds_adapters::XdsStateSink& sink_;
  size_t shard_;
  metrics::CounterFamily& messages_;
  metrics::CounterFamily& bytes_;
  metrics::CounterFamily& terminations_;
  metrics::CounterFamily& rejected_;
};

struct IstioControl::Impl {
  xds::XdsEnvConfig xds_config;
  std::string ca_description;
  std::string inpod_uds;
  std::unique_ptr<mesh::WorkloadStore> store;
  std::unique_ptr<xds_adapters::XdsStateSink> sink;
  std::unique_ptr<XdsMetricsHandler> handler;
  std::unique_ptr<xds::DeltaXdsClient> xds;
  std::unique_ptr<capture::ZdsClient> zds;
  std::atomic<bool> snapshot_done{false};
  bool stopped = false;
};

IstioControl::IstioControl(Agent& agent) : agent_(agent), impl_(std::make_unique<Impl>()) {}

IstioControl::~IstioControl() { Stop(); }

StatusOr<std::unique_ptr<IstioControl>> IstioControl::Create(
    Agent& agent, const std::map<std::string, std::string>& env) {
  std::unique_ptr<IstioControl> ctl(new IstioControl(agent));
  Impl& impl = *ctl->impl_;
  ASSIGN_OR_RETURN(impl.xds_config, xds::XdsConfigFromEnv(env));
  if (!impl.xds_config.enabled) {
    return absl::InvalidArgumentError(
        "no configuration source: XDS_ADDRESS is empty and no --config (LOCAL_XDS_PATH) was given");
  }
  xds::NodeInfo& node = impl.xds_config.client.node;
  if (node.node_name.empty()) node.node_name = agent.flags_.node;
  io::Loop& loop = agent.runtime_->main_loop();

  // Certificates.
  if (GetOr(env, "FAKE_CA") == "true") {
    std::string ca_dir = agent.flags_.ca_dir.empty() ? "/var/lib/ambit/ca" : agent.flags_.ca_dir;
    ASSIGN_OR_RETURN(auto ca, identity::BuiltinCa::LoadFromDir(ca_dir));
    agent.ca_.emplace(std::move(ca));
    auto ttl = std::chrono::duration_cast<std::chrono::seconds>(agent.flags_.cert_ttl);
    agent.cert_source_ = std::make_unique<identity::BuiltinCertSource>(loop, *agent.ca_, ttl);
    impl.ca_description = "built-in CA in " + ca_dir + " (FAKE_CA=true)";
  } else {
    ASSIGN_OR_RETURN(identity::IstioCaOptions ca_opts, CaOptionsFromEnv(env, impl.xds_config));
    ca_opts.cert_ttl = std::chrono::duration_cast<std::chrono::seconds>(agent.flags_.cert_ttl);
    impl.ca_description = "Istio CA at " + ca_opts.address;
    ASSIGN_OR_RETURN(agent.cert_source_, identity::IstioCaClient::Create(loop, std::move(ca_opts)));
  }
  agent.secrets_ = std::make_unique<identity::SecretManager>(loop, *agent.cert_source_);

  // Workloads, services, policies.
  impl.store = std::make_unique<mesh::WorkloadStore>(agent.flags_.node);
  impl.sink = std::make_unique<xds_adapters::XdsStateSink>(
      *impl.store, [&agent](std::shared_ptr<const mesh::Snapshot> snap) {
        agent.OnSnapshot(std::move(snap));
      });
  impl.handler = std::make_unique<XdsMetricsHandler>(agent, *impl.sink, *agent.registry_,
                                                     agent.runtime_->worker_count());
  ASSIGN_OR_RETURN(impl.xds, xds::DeltaXdsClient::CreateGrpc(loop, impl.xds_config.client,
                                                             impl.xds_config.grpc, *impl.handler));

  // Pods.
  impl.inpod_uds = GetOr(env, "INPOD_UDS", capture::kDefaultInpodUds);
  capture::ZdsClientOptions zo;
  zo.uds_path = impl.inpod_uds;
  zo.handler_loop = &loop;
  impl.zds = std::make_unique<capture::ZdsClient>(zo, *ctl);

  metrics::Registry& reg = *agent.registry_;
  capture::ZdsClient* zds = impl.zds.get();
  reg.AddCallbackCounter("ambit_zds_protocol_errors", "ZDS messages that broke the protocol",
                         [zds] { return static_cast<double>(zds->stats().session.protocol_errors); });
  reg.AddCallbackCounter("ambit_zds_nacks", "ZDS requests answered with an error",
                         [zds] { return static_cast<double>(zds->stats().session.nacks); });
  reg.AddCallbackCounter("ambit_zds_connects", "Connections made to the node agent (istio-cni)",
                         [zds] { return static_cast<double>(zds->stats().connects); });
  reg.AddCallbackCounter("ambit_zds_connect_failures", "Failed connections to the node agent",
                         [zds] { return static_cast<double>(zds->stats().connect_failures); });
  identity::SecretManager* secrets = agent.secrets_.get();
  reg.AddCallbackCounter("ambit_ca_fetches", "Certificate requests started",
                         [secrets] { return static_cast<double>(secrets->fetches_started()); });
  if (impl.xds_config.on_demand) {
    AMBIT_LOG(kWarn, "xds",
              "XDS_ON_DEMAND=true: on-demand address lookups are not implemented; subscribing to "
              "every Address instead (same answers, more memory on large meshes)");
  }
  AMBIT_LOG(kInfo, "agent", "Istio mode: xDS from {}, certificates from {}, pods from ZDS at {}",
            impl.xds_config.grpc.address, impl.ca_description, impl.inpod_uds);
  return ctl;
}

void IstioControl::Start() {
  impl_->xds->Start();
  impl_->zds->Start();
}

void IstioControl::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->zds) impl_->zds->Stop();
  impl_->xds.reset();  // cancels the stream, joins its thread
}

bool IstioControl::pods_ready() const {
  return impl_->snapshot_done.load() && impl_->zds->ready();
}

void IstioControl::AddDumpConfig(std::map<std::string, std::string>& config) const {
  config["xdsAddress"] = impl_->xds_config.grpc.address;
  config["caAddress"] = impl_->ca_description;
  config["inpodUds"] = impl_->inpod_uds;
  config["clusterId"] = impl_->xds_config.client.node.cluster_id;
  config["xdsNodeId"] = xds::NodeId(impl_->xds_config.client.node);
}

Status IstioControl::OnPodAdded(const capture::PodAdded& pod) {
  ASSIGN_OR_RETURN(net::NetnsHandle ns, pod.netns.Dup());
  Agent::PodSpec spec;
  spec.uid = pod.uid;
  spec.name = pod.name;
  spec.ns = pod.namespace_;
  spec.service_account = pod.service_account;
  spec.netns = std::make_shared<const net::NetnsHandle>(std::move(ns));
  spec.netns_label = "fd (ZDS)";
  spec.install_redirect = false;  // istio-cni installed the in-pod rules
  Status st = agent_.AddPod(std::move(spec));
  if (!st.ok()) {
    agent_.pod_errors_->Inc();
    AMBIT_LOG(kError, "capture", "cannot start the proxy of pod {}/{} ({}): {}", pod.namespace_,
              pod.name, pod.uid, st.ToString());
  }
  return st;
}

Status IstioControl::OnPodRemoved(const capture::PodRemoved& pod) {
  agent_.RemovePod(pod.uid);
  return absl::OkStatus();
}

void IstioControl::OnSnapshotDone(const capture::SnapshotDone& done) {
  impl_->snapshot_done.store(true);
  AMBIT_LOG(kInfo, "zds", "node agent snapshot received: {} pod(s)", done.pods);
}

}  // namespace ambit::agent
