// Worker: everything one worker thread owns for the data path — its loop,
// its view of AgentState, its HBONE pool, its accept loops on the in-pod
// listeners (one SO_REUSEPORT socket per port per worker), and its live
// connections. Loop-thread only, except where noted.
#pragma once

#include <optional>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "common/net/socket.h"
#include "common/telemetry/tcp_metrics.h"
#include "agent/proxy/accept_errors.h"
#include "agent/proxy/agent_state.h"
#include "agent/proxy/conn_record.h"
#include "common/mesh/lb.h"
#include "common/hbone/conn.h"
#include "common/hbone/pool.h"
#include "common/io/loop.h"
#include "common/net/fd.h"
#include "common/net/netns.h"

namespace ambit::agent {

struct WorkerOptions {
  uint32_t packet_mark = 0x539;
  base::Duration connect_timeout = std::chrono::seconds(10);
  bool localhost_app_tunnel = true;  // PROXY app tunnels on the pod's loopback
  // Inbound upstream connects bind the client's address (ENABLE_ORIG_SRC not
  // false): the app sees who called it.
  bool spoof_source = true;
  net::KeepaliveOptions keepalive;  // KEEPALIVE_*, on listeners and upstream sockets
  hbone::ConnOptions conn;
  hbone::PoolOptions pool;
};

// Counters of a worker that are not per-connection labels.
struct WorkerCounters {
  metrics::Counter* accept_errors = nullptr;
  metrics::Counter* decision_errors = nullptr;
};

enum class ListenerKind : uint8_t { kOutbound = 0, kInboundPlain = 1, kHbone = 2 };

class Worker {
 public:
  Worker(io::Loop& loop, size_t index, WorkerOptions options, TcpMetrics& metrics,
         metrics::Registry& registry, net::NetnsRunner& runner);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Loop thread: starts the pool's idle sweeper (and, on worker 0, the
  // watch on the pods' netns paths).
  void Start();
  io::Loop& loop() const { return loop_; }
  size_t index() const { return index_; }
  const WorkerOptions& options() const { return options_; }
  TcpMetrics& metrics() const { return metrics_; }
  net::NetnsRunner& runner() const { return runner_; }
  // The worker thread's own netns (null if it could not be opened): upstream
  // sockets are made in a pod's netns on this thread and come back here.
  const net::NetnsHandle* home_netns() const { return home_netns_ ? &*home_netns_ : nullptr; }
  hbone::HbonePool& pool() { return pool_; }
  ConnTracker& tracker() { return tracker_; }
  // Shared per-destination connection facts (cleared on every state change).
  PeersCache& peers() { return peers_; }
  mesh::Rng& rng() { return rng_; }
  const std::shared_ptr<const AgentState>& state() const { return state_; }

  // New state from the control thread; re-checks inbound connections when
  // the policy set may have changed.
  void SetState(std::shared_ptr<const AgentState> state, bool policies_changed);
  // Starts accepting on this worker's sockets of a pod (15001, 15006, 15008).
  void AddPod(const std::string& uid, std::array<net::Fd, 3> listeners);
  // Stops accepting and cancels the pod's connections at once.
  void RemovePod(const std::string& uid);
  // Drain: stop accepting everywhere (the listeners are shut down, so the
  // kernel hands their queued connections to a new agent's listeners when
  // net.ipv4.tcp_migrate_req=1; connections we already accepted are still
  // served), GOAWAY on HBONE connections. The pool keeps serving accepted
  // connections and is shut down once none is left.
  void Drain();
  // Spawns a connection's task, counted in live_connections_approx() until it ends.
  void SpawnCounted(io::Task<void> task) { loop_.Spawn(Counted(this, std::move(task))); }
  // Server-side HBONE connections (GOAWAY on drain).
  void TrackInbound(const std::shared_ptr<hbone::HboneConn>& conn);
  bool draining() const { return draining_; }
  size_t live_connections() const { return tracker_.live().size(); }
  // Thread-safe, for the control thread's drain: live connections plus
  // handlers still running and accept loops still open (a connection just
  // accepted is not in the tracker yet, and must not let the process exit).
  size_t live_connections_approx() const {
    return tracker_.live_count() + busy_.load(std::memory_order_relaxed);
  }
  size_t pods() const { return listeners_.size(); }
  uint64_t accepted() const { return accepted_; }
  const AcceptErrors& accept_errors() const { return accept_errors_; }

 private:
  struct ListenerSet;
  static io::Task<void> AcceptLoop(Worker* w, std::shared_ptr<ListenerSet> set, ListenerKind kind);
  void Dispatch(ListenerKind kind, const std::string& uid, net::Fd fd,
                const net::SocketAddress& peer);
  // Runs a connection handler, counted in busy_.
  static io::Task<void> Counted(Worker* w, io::Task<void> handler);
  void Idle();  // busy_ dropped: shut the pool down once drained
  static io::Task<void> NetnsWatch(Worker* w, std::shared_ptr<io::CancelScope> scope);
  void CheckNetns();

  io::Loop& loop_;
  size_t index_;
  WorkerOptions options_;
  TcpMetrics& metrics_;
  net::NetnsRunner& runner_;
  std::optional<net::NetnsHandle> home_netns_;
  WorkerCounters counters_;
  hbone::HbonePool pool_;
  ConnTracker tracker_;
  PeersCache peers_;
  mesh::DefaultRng rng_;
  std::shared_ptr<const AgentState> state_;
  std::map<std::string, std::shared_ptr<ListenerSet>> listeners_;
  std::vector<std::weak_ptr<hbone::HboneConn>> inbound_;
  uint64_t accepted_ = 0;
  bool draining_ = false;
  std::atomic<size_t> busy_{0};
  AcceptErrors accept_errors_;
  std::set<std::string> netns_warned_;
  std::shared_ptr<io::CancelScope> watch_scope_ = std::make_shared<io::CancelScope>();
};

// Connection handlers (outbound.cc, inbound.cc, inbound_plain.cc).
io::Task<void> HandleOutbound(Worker& w, std::shared_ptr<const PodContext> pod, net::Fd client,
                              net::SocketAddress peer);
io::Task<void> HandleHboneInbound(Worker& w, std::shared_ptr<const PodContext> pod, net::Fd fd,
                                  net::SocketAddress peer);
io::Task<void> HandlePlainInbound(Worker& w, std::shared_ptr<const PodContext> pod, net::Fd fd,
                                  net::SocketAddress peer);

}  // namespace ambit::agent
