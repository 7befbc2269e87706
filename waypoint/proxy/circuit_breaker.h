// Circuit breaking (DestinationRule connectionPool) and the per-cluster
// resilience state the workers share. Envoy's thresholds, per cluster
// across all workers (atomics): requests in flight (max_requests),
// HTTP/1.1 connections busy with a request (max_connections), requests
// waiting for one of those (max_pending_requests) and retries in flight
// (max_retries). Past a limit the request is answered 503 with flag UO at
// once; nothing queues beyond max_pending_requests.
//
// ResilienceTable is built by the control thread for each published config
// (ResilienceRegistry::Build) and reached through WaypointState; the
// counters and the outlier state of a cluster survive config changes (the
// same objects are carried into the next table by cluster name), so a
// request admitted under one config releases its slot correctly under the
// next. A changed outlierDetection starts with no ejections.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/clock.h"
#include "common/io/cancel.h"
#include "common/io/event.h"
#include "common/io/loop.h"
#include "common/io/task.h"
#include "common/metrics/registry.h"
#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/outlier.h"
#include "waypoint/proxy/request_log.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint {

// What a cluster has in flight, shared by every worker.
struct BreakerCounters {
  std::atomic<uint32_t> requests{0};
  // HTTP/1.1 upstreams busy with a request, plus open HTTP/2 sessions.
  std::atomic<uint32_t> connections{0};
  std::atomic<uint32_t> pending{0};
  std::atomic<uint32_t> retries{0};
  metrics::Counter* pending_overflow = nullptr;  // any UO answer (Envoy's name)
  metrics::Counter* retry_overflow = nullptr;

  // Pending requests waiting for a connection slot, oldest first; a freed
  // slot wakes the oldest on its own worker's loop (Loop::Post).
  struct Waiter {
    io::Loop* loop = nullptr;
    std::shared_ptr<io::Event> wake;  // created and set on `loop`
  };
  std::mutex mu;
  std::deque<Waiter> waiters;  // mu
  // Gives a connection slot back and wakes the oldest waiter.
  void ReleaseConnection();
  void WakeOne();  // mu not held
};

// One cluster with a DestinationRule policy, as of one config.
struct ClusterRuntime {
  std::string name;
  route::ConnectionPoolPolicy pool;  // defaults (unlimited) without connectionPool
  std::optional<route::OutlierPolicy> outlier;
  std::shared_ptr<BreakerCounters> counters;  // never null
  std::shared_ptr<OutlierDetector> detector;  // null without outlierDetection
};

struct ResilienceTable {
  std::map<std::string, ClusterRuntime, std::less<>> clusters;
  const ClusterRuntime* Find(std::string_view cluster) const {
    auto it = clusters.find(cluster);
    return it == clusters.end() ? nullptr : &it->second;
  }
};

// Control thread only.
class ResilienceRegistry {
 public:
  // Series are created on `shard` (the control thread's); the counters are
  // atomics, so workers may bump them.
  ResilienceRegistry(metrics::Registry& registry, size_t shard);
  std::shared_ptr<const ResilienceTable> Build(const route::RouteConfig& routes);
  const std::shared_ptr<const ResilienceTable>& current() const { return current_; }

 private:
  size_t shard_;
  metrics::CounterFamily* pending_overflow_;
  metrics::CounterFamily* retry_overflow_;
  metrics::CounterFamily* ejections_;
  metrics::GaugeFamily* ejected_;
  std::shared_ptr<const ResilienceTable> current_;
};

// The request's place in its cluster: slots taken at admission, released
// by Finish (or the destructor), which also feeds the final outcome of the
// request to outlier detection. Move-only.
class ClusterGuard {
 public:
  ClusterGuard() = default;
  ClusterGuard(ClusterGuard&& o) noexcept { *this = std::move(o); }
  ClusterGuard& operator=(ClusterGuard&& o) noexcept;
  ClusterGuard(const ClusterGuard&) = delete;
  ClusterGuard& operator=(const ClusterGuard&) = delete;
  ~ClusterGuard() { Finish(); }

  bool overflow() const { return overflow_; }
  // The 503 UO answer for an overflowed request.
  static LocalReply OverflowReply();
  // maxRetries: true (and a retry slot held until Finish, or until
  // ReleaseRetry) when one more retry may go to the cluster; false counts a
  // retry overflow (Envoy answers with the last try's result, flag URX
  // left to the retry code).
  bool TryAcquireRetry();
  void ReleaseRetry();
  // The outcome of a try that is being retried, for outlier detection:
  // the endpoint (ip:port), the status it answered (or the local reply's)
  // and the response flags (UF, UR, UT: local-origin failures). The final
  // try is reported by Finish from the request's RequestInfo.
  void ReportTry(const std::string& host, int status, std::string_view flags,
                 base::MonoTime now);
  // Releases the slots and reports the request's final outcome.
  void Finish();
  // maxRequestsPerConnection: whether an HTTP/1.1 upstream that has served
  // `served` requests may go back to the pool.
  bool MayReuse(uint32_t served) const { return max_per_conn_ == 0 || served < max_per_conn_; }
  // tcp.connectTimeout, when the cluster sets one.
  std::optional<base::Duration> connect_timeout() const { return connect_timeout_; }
  // The cluster's runtime (null without a DestinationRule); it lives as long
  // as the WaypointState the request pinned.
  const ClusterRuntime* runtime() const { return runtime_; }

 private:
  friend io::Task<ClusterGuard> AdmitRequest(const ClusterRuntime* rt, bool http1,
                                             const RequestInfo* info, io::Loop& loop,
                                             io::CancelScope* scope);
  std::shared_ptr<BreakerCounters> counters_;
  std::shared_ptr<OutlierDetector> detector_;
  std::optional<route::OutlierPolicy> outlier_;
  const RequestInfo* info_ = nullptr;
  io::Loop* loop_ = nullptr;
  bool overflow_ = false;
  bool holds_request_ = false;
  bool holds_connection_ = false;
  bool reported_ = false;
  uint32_t retries_held_ = 0;
  uint32_t max_retries_ = route::kUnlimited;
  uint32_t max_per_conn_ = 0;
  std::optional<base::Duration> connect_timeout_;
  const ClusterRuntime* runtime_ = nullptr;
};

// Admits a request to cluster `rt` (null: no DestinationRule, no limits).
// `http1`: the upstream is HTTP/1.1, so the request needs a connection of
// its own; past maxConnections it waits (as one of at most
// http1MaxPendingRequests, in arrival order) for one to free up, at most the
// cluster's connectTimeout (10s unset), then overflows. `info` must outlive the guard; its final
// state is the outcome outlier detection sees.
io::Task<ClusterGuard> AdmitRequest(const ClusterRuntime* rt, bool http1, const RequestInfo* info,
                                    io::Loop& loop, io::CancelScope* scope);

// Pure admission decisions (unit tests; AdmitRequest uses them).
enum class Admission : uint8_t { kAdmitted, kPending, kOverflow };
// Takes a request slot and, for HTTP/1.1, a connection slot; kPending: the
// request slot is held, a pending slot is taken, retry TryConnection.
Admission TryAdmit(BreakerCounters& c, const route::ConnectionPoolPolicy& p, bool http1);
bool TryConnection(BreakerCounters& c, const route::ConnectionPoolPolicy& p);
// A pending slot (http1MaxPendingRequests) for an HTTP/2 request waiting
// for stream capacity; GivePending returns it.
bool TryPending(BreakerCounters& c, const route::ConnectionPoolPolicy& p);
void GivePending(BreakerCounters& c);

}  // namespace ambit::waypoint
