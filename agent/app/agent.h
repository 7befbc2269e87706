// Agent: the composition root of ambit-agent (standalone mode). Owns the
// Runtime (control loop + workers), the config watcher, the workload store,
// the built-in CA and per-pod certificates, the in-pod listeners, metrics
// and the admin servers, and publishes AgentState to the workers.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/app/flags.h"
#include "agent/authz/evaluate.h"
#include "agent/authz/istio_translate.h"
#include "agent/metrics/tcp_metrics.h"
#include "agent/proxy/agent_state.h"
#include "agent/proxy/worker.h"
#include "common/admin/server.h"
#include "common/config/file_watcher.h"
#include "common/identity/builtin_ca.h"
#include "common/lifecycle/runtime.h"
#include "common/metrics/registry.h"
#include "common/net/netns.h"

namespace ambit::agent {

class Agent {
 public:
  static StatusOr<std::unique_ptr<Agent>> Create(AgentFlags flags);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Runs until drained (SIGTERM/SIGINT, /quitquitquit). Returns the exit code.
  int Run();

 private:
  struct CertEntry {
    identity::CertBundle bundle;
    std::shared_ptr<const tls::TlsContext> server;
    std::shared_ptr<const tls::TlsContext> client;
  };
  struct PodRecord {
    std::shared_ptr<PodContext> ctx;
    bool redirect_installed = false;
  };

  explicit Agent(AgentFlags flags);
  Status Init();
  Status StartWorkers();
  Status StartAdmin();
  std::string ConfigDump();
  void OnConfig(const StatusOr<std::shared_ptr<const config::LocalConfig>>& result);
  Status Reconcile(const config::LocalConfig& cfg);
  StatusOr<std::shared_ptr<PodContext>> MakePod(const state::Workload& w);
  Status OpenListeners(const PodContext& pod);
  StatusOr<const CertEntry*> CertFor(const identity::Identity& id);
  void RefreshCertificates();
  void Publish(bool policies_changed);
  void StartDrain();
  static io::Task<void> CertRefresher(Agent* agent);
  static io::Task<void> DrainWaiter(Agent* agent);

  AgentFlags flags_;
  std::unique_ptr<lifecycle::Runtime> runtime_;
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<TcpMetrics> tcp_metrics_;
  std::unique_ptr<net::NetnsRunner> netns_runner_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<config::FileWatcher> watcher_;
  std::optional<identity::BuiltinCa> ca_;
  std::map<std::string, CertEntry> certs_;      // by identity
  std::map<std::string, PodRecord> pods_;       // by uid
  std::shared_ptr<const state::Snapshot> snapshot_;
  std::shared_ptr<const AgentState> published_;
  uint64_t generation_ = 0;
  std::string policy_fingerprint_;
  io::CancelScope control_scope_;
  bool draining_ = false;
  std::atomic<bool> ready_{false};
  std::unique_ptr<admin::HttpServer> admin_server_;
  std::unique_ptr<admin::HttpServer> stats_server_;
  std::unique_ptr<admin::HttpServer> readiness_server_;  // on worker 0: proves the data path
  metrics::Counter* reloads_ok_ = nullptr;
  metrics::Counter* reloads_failed_ = nullptr;
  metrics::Counter* pod_errors_ = nullptr;
  metrics::Gauge* policy_findings_ = nullptr;
  std::shared_ptr<const authz::AuthzIndex> authz_index_;
  std::vector<authz::Finding> findings_;
};

}  // namespace ambit::agent
