// Waypoint: the composition root of ambit-waypoint. Owns the Runtime
// (control loop + workers), metrics and admin servers, the certificate of
// the waypoint's identity, the watched config, and publishes WaypointState
// to the workers. Control thread only, except the readiness callback
// (worker 0), which reads atomics.
#pragma once

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/admin/server.h"
#include "common/config/file_watcher.h"
#include "common/identity/builtin_ca.h"
#include "common/identity/secret_manager.h"
#include "common/lifecycle/runtime.h"
#include "common/metrics/registry.h"
#include "common/telemetry/tcp_metrics.h"
#include "waypoint/app/flags.h"
#include "waypoint/proxy/circuit_breaker.h"
#include "waypoint/app/rls_client.h"
#include "waypoint/app/span_exporter.h"
#include "waypoint/proxy/request_log.h"
#include "waypoint/proxy/worker.h"
#include "waypoint/route/compile.h"
#include "waypoint/route/compile_authz.h"
#include "waypoint/route/observability.h"
#include "waypoint/route/tracing_policy.h"

namespace ambit::waypoint {

struct ClusterMode;  // cluster_mode.h

class Waypoint {
 public:
  static StatusOr<std::unique_ptr<Waypoint>> Create(WaypointFlags flags);
  ~Waypoint();
  Waypoint(const Waypoint&) = delete;
  Waypoint& operator=(const Waypoint&) = delete;

  // Runs until drained (SIGTERM/SIGINT, /quitquitquit). Returns the exit code.
  int Run();

 private:
  explicit Waypoint(WaypointFlags flags);
  Status Init();
  Status StartWorkers();
  Status StartListeners();
  Status StartAdmin();
  Status StartConfig();
  void OnConfig(const StatusOr<std::shared_ptr<const config::LocalConfig>>& result);
  Status Reconcile(const config::LocalConfig& cfg);
  // Compiles `cfg`'s resources against `snap` as `self` and publishes.
  Status Apply(const config::LocalConfig& cfg, std::shared_ptr<const mesh::Snapshot> snap,
               const mesh::Workload& self);
  // Cluster mode (cluster_mode.cc): istiod xDS + CA, Kubernetes API.
  Status StartCluster();
  void OnClusterSnapshot(std::shared_ptr<const mesh::Snapshot> snap);
  void ReconcileCluster();
  void StopCluster();
  nlohmann::json ClusterDump() const;
  void OnCertificate(const identity::Identity& id, const identity::CertPtr& cert);
  void Publish();
  void BuildRateLimits(const route::RouteConfig& routes, const mesh::Snapshot& snap);
  void ReportRouteFindings(const std::vector<route::Finding>& findings);
  std::vector<std::string> NotReadyReasons() const;
  std::string ConfigDump() const;  // config_dump.cc
  std::string TracingDump() const;  // tracing_dump.cc (a JSON object)
  std::string ObservabilityDump() const;  // observability_dump.cc (a JSON object)
  void StartDrain();
  static io::Task<void> DrainWaiter(Waypoint* wp);

  WaypointFlags flags_;
  std::unique_ptr<lifecycle::Runtime> runtime_;
  std::unique_ptr<ClusterMode> cluster_;  // cluster mode only; goes before the runtime
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<SpanExporter> span_exporter_;  // outlives the workers that submit
  std::unique_ptr<telemetry::TcpMetrics> tcp_metrics_;
  std::unique_ptr<RequestMetrics> request_metrics_;
  WorkerCounters counters_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // Rate limits (after workers_: their RateLimitService clients go first).
  RateLimitCounters rl_counters_;
  RlsClients rls_clients_;
  std::shared_ptr<const RateLimits> ratelimits_;

  std::optional<identity::BuiltinCa> ca_;
  std::unique_ptr<identity::CertSource> cert_source_;
  std::unique_ptr<identity::SecretManager> secrets_;
  identity::CertPtr cert_;
  std::shared_ptr<const tls::TlsContext> server_tls_, client_tls_;

  std::unique_ptr<config::FileWatcher> watcher_;
  std::shared_ptr<const mesh::Snapshot> snapshot_;
  std::optional<mesh::Workload> self_;
  std::optional<identity::Identity> identity_;
  std::vector<std::string> warnings_;  // config findings (config_dump)
  std::shared_ptr<const route::RouteConfig> routes_;
  std::shared_ptr<const route::TracingConfig> tracing_;
  std::shared_ptr<const route::ObservabilityConfig> observability_;
  std::unique_ptr<ResilienceRegistry> resilience_;  // circuit breakers, outlier state
  std::shared_ptr<const ResilienceTable> resilience_table_;  // of routes_
  std::shared_ptr<const route::AuthzConfig> authz_;
  std::vector<std::string> authz_unbound_;  // targetRef policies not bound here, with why
  std::vector<route::Finding> route_findings_list_;   // of the applied config
  std::set<std::string> route_findings_logged_;
  std::map<std::string, int64_t> route_finding_kinds_;
  metrics::GaugeFamily* route_findings_ = nullptr;
  uint64_t generation_ = 0;
  bool listeners_started_ = false;
  bool draining_ = false;
  io::CancelScope control_scope_;

  std::atomic<bool> started_{false};
  std::atomic<bool> config_ready_{false};
  std::atomic<bool> cert_ready_{false};
  std::atomic<bool> draining_flag_{false};

  std::unique_ptr<admin::HttpServer> admin_server_;
  std::unique_ptr<admin::HttpServer> stats_server_;
  std::unique_ptr<admin::HttpServer> readiness_server_;
  metrics::Counter* reloads_ok_ = nullptr;
  metrics::Counter* reloads_failed_ = nullptr;
};

}  // namespace ambit::waypoint
