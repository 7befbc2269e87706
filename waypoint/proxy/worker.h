// Worker: what one worker thread of the waypoint owns — its loop, its view
// of WaypointState, its HBONE pool and HTTP upstream pools, its endpoint
// cursors and its accept loops (one SO_REUSEPORT socket per listener per
// worker, so downstream connections spread over all workers).
// Loop-thread only, except live_approx().
#pragma once

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/hbone/pool.h"
#include "common/io/loop.h"
#include "common/metrics/registry.h"
#include "common/net/fd.h"
#include "common/telemetry/tcp_metrics.h"
#include "waypoint/proxy/cluster.h"
#include "waypoint/proxy/request_log.h"
#include "waypoint/proxy/state.h"
#include "waypoint/proxy/upstream.h"

namespace ambit::waypoint {

struct WorkerOptions {
  UpstreamOptions upstream;
  hbone::PoolOptions pool;
  // Waiting for the first client bytes to tell the protocol on ports that do
  // not declare one; past it the connection is relayed as TCP.
  base::Duration sniff_timeout = std::chrono::seconds(1);
  // Waiting for a complete request head (slowloris bound) on a keep-alive
  // connection that started sending one; idle keep-alive connections wait
  // up to idle_timeout.
  base::Duration request_headers_timeout = std::chrono::seconds(30);
  base::Duration idle_timeout = std::chrono::hours(1);
};

enum class ListenerKind : uint8_t { kHbone, kSandwich };

// Counters of bad input and failures that are not per-request labels.
struct WorkerCounters {
  metrics::CounterFamily* downstream_errors = nullptr;  // {protocol, reason}
  metrics::CounterFamily* connect_rejected = nullptr;   // {reason}
  metrics::CounterFamily* route_outcomes = nullptr;     // {outcome}
  // Authorization (rbac_filter.h): {policy}, shadow {result, policy}.
  metrics::CounterFamily* rbac_allowed = nullptr;
  metrics::CounterFamily* rbac_denied = nullptr;
  metrics::CounterFamily* rbac_shadow = nullptr;
  metrics::CounterFamily* rbac_audit = nullptr;
  metrics::CounterFamily* retries = nullptr;            // {cluster, event} (retry.h)
  // Upstream HTTP connections / h2 sessions closed idle (http.idleTimeout)
  // and TCP-relayed connections closed idle (tcp.idleTimeout): {cluster}.
  metrics::CounterFamily* upstream_idle_timeouts = nullptr;
  metrics::CounterFamily* tcp_idle_timeouts = nullptr;
  // Connection balance (Envoy's exact_balance): downstream connections one
  // worker accepted and handed to a less busy one; active ones per worker.
  metrics::CounterFamily* cx_rebalanced = nullptr;     // {}
  metrics::GaugeFamily* cx_active = nullptr;           // {worker}
};

class Worker {
 public:
  Worker(io::Loop& loop, size_t index, WorkerOptions options, const RequestMetrics& requests,
         telemetry::TcpMetrics& tcp, WorkerCounters counters);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Start();
  void SetState(std::shared_ptr<const WaypointState> state);
  void AddListener(ListenerKind kind, net::Fd fd);
  // Every worker of the process (this one included), set once before the
  // listeners start: an accepted connection goes to the one with the fewest
  // active downstream connections, so that a few long-lived HBONE
  // connections (each carrying many streams) never pile onto one worker
  // while another idles (SO_REUSEPORT hashes them regardless of load).
  void SetSiblings(std::vector<Worker*> all) { siblings_ = std::move(all); }
  // Thread-safe: downstream connections being served, and promised to it.
  int64_t connections() const { return connections_.load(std::memory_order_relaxed); }
  // No new connections; GOAWAY on downstream HBONE connections; idle pooled
  // upstreams closed.
  void Drain();

  io::Loop& loop() const { return loop_; }
  size_t index() const { return index_; }
  const WorkerOptions& options() const { return options_; }
  const std::shared_ptr<const WaypointState>& state() const { return state_; }
  hbone::HbonePool& pool() { return pool_; }
  Http1Pool& http1_pool() { return http1_pool_; }
  H2Pool& h2_pool() { return h2_pool_; }
  EndpointPicker& picker() { return picker_; }
  const RequestMetrics& requests() const { return requests_; }
  const WorkerCounters& counters() const { return counters_; }
  telemetry::TcpMetrics& tcp() const { return tcp_; }
  void CountDownstreamError(std::string_view protocol, std::string_view reason);
  void CountConnectRejected(std::string_view reason);
  bool draining() const { return draining_; }
  // Uniform 64-bit randoms for weighted picks and percentages (xorshift*;
  // not for anything secret).
  uint64_t Random() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545F4914F6CDD1DULL;
  }
  // Counted per route-step outcome: route_not_found, cluster_not_found,
  // direct_response, redirect, mirror_{sent,skipped_body,failed}.
  void CountRoute(std::string_view outcome);
  // Counted per cluster: retry_event::* (retry.h).
  void CountRetry(const std::string& cluster, std::string_view event);
  // Counted per cluster: an idle timeout closed an upstream (http) or a
  // relayed connection (tcp).
  void CountIdleTimeout(const std::string& cluster, bool tcp);
  void SpawnCounted(io::Task<void> task) { loop_.Spawn(Counted(this, std::move(task))); }
  void TrackDownstream(const std::shared_ptr<http2::Session>& s);
  // Thread-safe: connections and handlers still running.
  size_t live_approx() const { return busy_.load(std::memory_order_relaxed); }

 private:
  static io::Task<void> AcceptLoop(Worker* w, int fd, ListenerKind kind,
                                   std::shared_ptr<io::CancelScope> scope);
  static io::Task<void> Counted(Worker* w, io::Task<void> task);
  // Serves one downstream connection on `w` (its thread), then releases the
  // slot taken for it in connections_.
  static io::Task<void> Serve(Worker* w, ListenerKind kind, net::Fd fd, net::SocketAddress peer);
  Worker* LeastBusy();
  void ReportActive();
  static io::Task<void> Sweeper(Worker* w, std::shared_ptr<io::CancelScope> scope);

  io::Loop& loop_;
  size_t index_;
  WorkerOptions options_;
  const RequestMetrics& requests_;
  telemetry::TcpMetrics& tcp_;
  WorkerCounters counters_;
  hbone::HbonePool pool_;
  Http1Pool http1_pool_;
  H2Pool h2_pool_;
  EndpointPicker picker_;
  std::shared_ptr<const WaypointState> state_;
  std::vector<net::Fd> listeners_;
  std::shared_ptr<io::CancelScope> accept_scope_ = std::make_shared<io::CancelScope>();
  std::vector<std::weak_ptr<http2::Session>> downstream_;
  std::atomic<size_t> busy_{0};
  std::vector<Worker*> siblings_;
  std::atomic<int64_t> connections_{0};
  bool draining_ = false;
  uint64_t rng_;
};

// Connection handlers (downstream.cc).
io::Task<void> HandleHboneConnection(Worker& w, net::Fd fd, net::SocketAddress peer);
io::Task<void> HandleSandwichConnection(Worker& w, net::Fd fd, net::SocketAddress peer);

}  // namespace ambit::waypoint
