// Agent: the composition root of ambit-agent. Owns the Runtime (control loop
// + workers), metrics and admin servers, the certificate cache, the captured
// pods and their in-pod listeners, and publishes AgentState to the workers.
//
// Two sources of configuration, one data path:
//   standalone (--config FILE): workloads/services/policies from a watched
//     YAML file, pods = this node's workloads with a `netns` path, certificates
//     from the built-in CA (agent.cc + standalone.cc);
//   Istio (no --config): workloads/services/policies over delta xDS from
//     istiod, pods announced by istio-cni over ZDS with their netns fd,
//     certificates from the Istio CA with impersonation (istio_mode.cc).
// Both feed OnSnapshot() and AddPod()/RemovePod() (pods.cc). Control thread
// only, except the readiness callback (worker 0) which reads atomics.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/app/flags.h"
#include "agent/dns/dns_proxy.h"
#include "agent/dns/on_demand.h"
#include "common/authz/evaluate.h"
#include "common/authz/istio_translate.h"
#include "common/telemetry/tcp_metrics.h"
#include "agent/proxy/agent_state.h"
#include "agent/proxy/worker.h"
#include "common/admin/server.h"
#include "common/config/file_watcher.h"
#include "common/identity/builtin_ca.h"
#include "common/identity/secret_manager.h"
#include "common/lifecycle/runtime.h"
#include "common/metrics/registry.h"
#include "common/net/netns.h"

namespace ambit::xds {
class DeltaXdsClient;
}
namespace ambit::xds_adapters {
class XdsStateSink;
}
namespace ambit::agent::capture {
class ZdsClient;
}

namespace ambit::agent {

class IstioControl;  // istio_mode.cc

// /debug/pprof/*: 501 "not served" with what to use instead (env_runtime.cc).
void AddProfilingAnswers(admin::HttpServer& server);

class Agent {
 public:
  static StatusOr<std::unique_ptr<Agent>> Create(AgentFlags flags);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Runs until drained (SIGTERM/SIGINT, /quitquitquit). Returns the exit code.
  int Run();

  // ---- pods (pods.cc); called by the configuration sources ---------------
  // What a configuration source knows about a pod it wants captured.
  struct PodSpec {
    std::string uid;  // standalone: the workload uid; Istio: the Kubernetes pod UID
    std::string name, ns, service_account;
    std::shared_ptr<const net::NetnsHandle> netns;
    std::string netns_label;  // path or "fd" (logs, config_dump)
    bool install_redirect = false;
  };
  // Opens the pod's listeners (not accepting yet), installs redirection when
  // asked, and requests its certificate; the pod goes Up when the certificate
  // arrives. Error: nothing was kept (ZDS NACKs it and retries).
  Status AddPod(PodSpec spec);
  // Immediate teardown (ISTIO-COMPAT §3.4): listeners and connections close.
  void RemovePod(const std::string& uid);
  bool HasPod(const std::string& uid) const { return pods_.count(uid) != 0; }
  // A new workload snapshot: rematch pods, rebuild policy, publish.
  void OnSnapshot(std::shared_ptr<const mesh::Snapshot> snap);

 private:
  struct TlsPair {
    identity::CertPtr cert;
    std::shared_ptr<const tls::TlsContext> server;
    std::shared_ptr<const tls::TlsContext> client;
  };
  struct PodRecord {
    PodSpec spec;
    std::shared_ptr<const PodContext> ctx;  // null until the certificate is there
    mesh::Workload workload;               // matched (or synthesized) workload
    identity::Identity identity;
    std::optional<std::vector<std::array<net::Fd, 3>>> listeners;  // until handed to workers
    bool redirect_installed = false;
    std::vector<dns::DnsSockets> dns_sockets;  // per worker, until handed to the DNS workers
  };

  explicit Agent(AgentFlags flags);
  Status Init();
  Status StartWorkers();
  Status StartAdmin();
  Status StartStandalone();   // standalone.cc
  Status StartIstio();        // istio_mode.cc
  std::string ConfigDump();
  void Publish(bool policies_changed);
  void StartDrain();
  static io::Task<void> DrainWaiter(Agent* agent);
  static io::Task<void> ReadinessWatcher(Agent* agent);
  static io::Task<void> MemoryHousekeeping(Agent* agent);  // periodic malloc_trim
  // CRL_PATH: loads the CRLs, counts istio_crl_policy_rejections; the
  // watcher reloads them when the file changes (checked every second).
  Status StartCrls();
  static io::Task<void> CrlWatcher(Agent* agent);
  std::vector<std::string> NotReadyReasons() const;
  void CheckReady();  // logs "ready" the first time nothing is pending

  // standalone.cc
  void OnConfig(const StatusOr<std::shared_ptr<const config::LocalConfig>>& result);
  Status Reconcile(const config::LocalConfig& cfg);

  // pods.cc
  mesh::Workload MatchWorkload(const PodSpec& spec) const;
  Status OpenListeners(PodRecord& rec);
  void HandListenersToWorkers(PodRecord& rec);
  void RefreshPod(PodRecord& rec);            // rebuilds ctx from workload + TLS
  void OnCertificate(const identity::Identity& id, const identity::CertPtr& cert);
  void StartReadyPods();  // hands listeners of pods with certificate + config to workers
  void ForgetUnusedIdentities();
  std::set<std::string> LocalWorkloadIdentities() const;  // Istio mode: prefetch set
  void UpdatePendingGauge();

  // dns.cc: the DNS proxy (15053) of every pod, on the workers.
  Status StartDns();
  Status OpenDnsSockets(PodRecord& rec);
  void HandDnsToWorkers(PodRecord& rec);
  void PublishDns();
  void RemovePodDns(const std::string& uid);
  void DrainDns();
  void AddDnsDumpConfig(std::map<std::string, std::string>& config) const;
  Status StartOnDemandDns();
  HostResolver OnDemandHostResolver() const;

  AgentFlags flags_;
  std::unique_ptr<lifecycle::Runtime> runtime_;
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<TcpMetrics> tcp_metrics_;
  std::unique_ptr<net::NetnsRunner> netns_runner_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // DNS proxy (null / empty when --dns-proxy=false).
  std::optional<dns::ListenAddress> dns_listen_;
  std::unique_ptr<dns::DnsMetrics> dns_metrics_;
  // On-demand resolution of hostname-only workloads (always on). Declared
  // before the upstream: the upstream's destructor cancels its lookups.
  std::unique_ptr<dns::OnDemandResolver> on_demand_dns_;
  std::unique_ptr<dns::Upstream> dns_upstream_;  // also when the DNS proxy is off
  std::vector<std::unique_ptr<dns::DnsWorker>> dns_workers_;
  bool dns_no_ipv6_logged_ = false;

  // Certificates: one SecretManager over the built-in CA or the Istio CA.
  std::optional<identity::BuiltinCa> ca_;
  std::unique_ptr<identity::CertSource> cert_source_;
  std::unique_ptr<identity::SecretManager> secrets_;
  std::map<std::string, TlsPair> tls_;  // by identity string
  std::shared_ptr<tls::CrlStore> crls_;  // null without CRL_PATH

  // Standalone source.
  std::unique_ptr<config::FileWatcher> watcher_;
  std::vector<authz::Finding> findings_;
  std::vector<std::string> config_findings_;  // standalone: waypoint binding, appProtocol
  // Istio source.
  std::unique_ptr<IstioControl> istio_;

  std::map<std::string, PodRecord> pods_;  // by uid
  std::shared_ptr<const mesh::Snapshot> snapshot_;
  std::shared_ptr<const authz::AuthzIndex> authz_index_;
  std::string policy_fingerprint_;
  uint64_t generation_ = 0;
  io::CancelScope control_scope_;
  bool draining_ = false;
  bool ready_logged_ = false;
  std::string last_not_ready_;

  // Readiness inputs (read by the readiness handler on worker 0).
  std::atomic<bool> started_{false};
  std::atomic<bool> draining_flag_{false};
  std::atomic<int> pods_pending_{0};
  std::atomic<bool> config_ready_{false};  // standalone: first file; Istio: every xDS type

  std::unique_ptr<admin::HttpServer> admin_server_;
  std::unique_ptr<admin::HttpServer> admin_v6_server_;  // [::1] twin of the default admin
  std::unique_ptr<admin::HttpServer> stats_server_;
  std::unique_ptr<admin::HttpServer> readiness_server_;  // on worker 0: proves the data path
  metrics::Counter* reloads_ok_ = nullptr;
  metrics::Counter* reloads_failed_ = nullptr;
  metrics::Counter* pod_errors_ = nullptr;
  metrics::Counter* pods_started_ = nullptr;
  metrics::Counter* pods_stopped_ = nullptr;
  metrics::Gauge* pods_active_ = nullptr;
  metrics::Gauge* pods_pending_gauge_ = nullptr;
  metrics::Gauge* policy_findings_ = nullptr;
  metrics::Counter* policy_findings_reported_ = nullptr;  // once per finding when it appears
  metrics::Gauge* config_findings_gauge_ = nullptr;
  metrics::Counter* config_findings_reported_ = nullptr;

  friend class IstioControl;
};

}  // namespace ambit::agent
