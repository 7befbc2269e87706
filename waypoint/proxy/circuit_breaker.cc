#include "waypoint/proxy/circuit_breaker.h"

#include <fmt/format.h>

#include <algorithm>

namespace ambit::waypoint {

namespace {

// Takes one unit of `n` when it stays within `limit`.
bool TakeSlot(std::atomic<uint32_t>& n, uint32_t limit) {
  uint32_t cur = n.load(std::memory_order_relaxed);
  do {
    if (cur >= limit) return false;
  } while (!n.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed));
  return true;
}

void Give(std::atomic<uint32_t>& n) { n.fetch_sub(1, std::memory_order_relaxed); }

bool HasFlag(std::string_view flags, std::string_view f) {
  size_t at = 0;
  while (at <= flags.size()) {
    const size_t end = std::min(flags.find(',', at), flags.size());
    if (flags.substr(at, end - at) == f) return true;
    at = end + 1;
  }
  return false;
}

}  // namespace

void BreakerCounters::ReleaseConnection() {
  Give(connections);
  WakeOne();
}

void BreakerCounters::WakeOne() {
  Waiter w;
  {
    std::lock_guard lock(mu);
    if (waiters.empty()) return;
    w = std::move(waiters.front());
    waiters.pop_front();
  }
  // The event belongs to the waiter's loop: set it there.
  w.loop->Post([wake = std::move(w.wake)] { wake->Set(); });
}

Admission TryAdmit(BreakerCounters& c, const route::ConnectionPoolPolicy& p, bool http1) {
  if (!TakeSlot(c.requests, p.max_requests)) return Admission::kOverflow;
  if (!http1 || TakeSlot(c.connections, p.max_connections)) return Admission::kAdmitted;
  if (TakeSlot(c.pending, p.max_pending_requests)) return Admission::kPending;
  Give(c.requests);
  return Admission::kOverflow;
}

bool TryConnection(BreakerCounters& c, const route::ConnectionPoolPolicy& p) {
  return TakeSlot(c.connections, p.max_connections);
}

bool TryPending(BreakerCounters& c, const route::ConnectionPoolPolicy& p) {
  return TakeSlot(c.pending, p.max_pending_requests);
}

void GivePending(BreakerCounters& c) { Give(c.pending); }

ResilienceRegistry::ResilienceRegistry(metrics::Registry& registry, size_t shard)
    : shard_(shard),
      pending_overflow_(&registry.AddCounter(
          "ambit_waypoint_upstream_rq_pending_overflow",
          "Requests answered 503 UO by a cluster's circuit breakers (http2MaxRequests, "
          "maxConnections with http1MaxPendingRequests), by cluster",
          {"cluster"})),
      retry_overflow_(&registry.AddCounter(
          "ambit_waypoint_upstream_rq_retry_overflow",
          "Retries not made because the cluster's maxRetries were in flight, by cluster",
          {"cluster"})),
      ejections_(&registry.AddCounter("ambit_waypoint_outlier_ejections",
                                      "Endpoints ejected by outlier detection, by cluster",
                                      {"cluster"})),
      ejected_(&registry.AddGauge("ambit_waypoint_outlier_ejected_endpoints",
                                  "Endpoints currently ejected by outlier detection, by cluster",
                                  {"cluster"})) {}

std::shared_ptr<const ResilienceTable> ResilienceRegistry::Build(
    const route::RouteConfig& routes) {
  auto t = std::make_shared<ResilienceTable>();
  for (const auto& [name, policy] : routes.policies) {
    if (!policy.connection_pool && !policy.outlier_detection) continue;
    ClusterRuntime rt;
    rt.name = name;
    if (policy.connection_pool) rt.pool = *policy.connection_pool;
    rt.outlier = policy.outlier_detection;
    const ClusterRuntime* old = current_ != nullptr ? current_->Find(name) : nullptr;
    if (old != nullptr) {
      rt.counters = old->counters;
      rt.detector = old->detector;
    } else {
      rt.counters = std::make_shared<BreakerCounters>();
      rt.counters->pending_overflow = pending_overflow_->Get(shard_, {name});
      rt.counters->retry_overflow = retry_overflow_->Get(shard_, {name});
    }
    // A changed outlierDetection starts afresh, as Envoy's rebuilt cluster
    // does; an unchanged one keeps its ejections across the reload.
    if (old != nullptr && old->outlier != rt.outlier) rt.detector = nullptr;
    if (rt.outlier && rt.detector == nullptr) {
      rt.detector = std::make_shared<OutlierDetector>(OutlierDetector::Metrics{
          ejections_->Get(shard_, {name}), ejected_->Get(shard_, {name}), name});
    }
    if (!rt.outlier) rt.detector = nullptr;  // removed: its ejections end with it
    t->clusters.emplace(name, std::move(rt));
  }
  current_ = t;
  return t;
}

ClusterGuard& ClusterGuard::operator=(ClusterGuard&& o) noexcept {
  if (this == &o) return *this;
  Finish();
  counters_ = std::move(o.counters_);
  detector_ = std::move(o.detector_);
  outlier_ = o.outlier_;
  info_ = o.info_;
  loop_ = o.loop_;
  overflow_ = o.overflow_;
  holds_request_ = std::exchange(o.holds_request_, false);
  holds_connection_ = std::exchange(o.holds_connection_, false);
  reported_ = std::exchange(o.reported_, true);
  retries_held_ = std::exchange(o.retries_held_, 0);
  max_retries_ = o.max_retries_;
  max_per_conn_ = o.max_per_conn_;
  connect_timeout_ = o.connect_timeout_;
  runtime_ = o.runtime_;
  o.info_ = nullptr;
  return *this;
}

LocalReply ClusterGuard::OverflowReply() {
  return {503, "upstream connect error or disconnect/reset before headers. reset reason: overflow",
          "UO", "upstream_reset_before_response_started{overflow}", 14};
}

bool ClusterGuard::TryAcquireRetry() {
  if (counters_ == nullptr) return true;  // no DestinationRule: Istio's unlimited default
  if (!TakeSlot(counters_->retries, max_retries_)) {
    if (counters_->retry_overflow != nullptr) counters_->retry_overflow->Inc();
    return false;
  }
  ++retries_held_;
  return true;
}

void ClusterGuard::ReleaseRetry() {
  if (counters_ == nullptr || retries_held_ == 0) return;
  --retries_held_;
  Give(counters_->retries);
}

void ClusterGuard::ReportTry(const std::string& host, int status, std::string_view f,
                             base::MonoTime now) {
  if (detector_ == nullptr || !outlier_ || host.empty()) return;
  using R = OutlierDetector::Result;
  R r = R::kSuccess;
  if (HasFlag(f, flags::kUpstreamConnectFailure) || HasFlag(f, flags::kUpstreamReset)) {
    r = R::kLocalConnect;
  } else if (HasFlag(f, flags::kUpstreamTimeout)) {
    r = R::kLocalTimeout;
  } else if (status >= 500) {
    r = R::kServerError;
  } else if (status == 0) {
    return;  // the client went away first: says nothing about the endpoint
  }
  detector_->Report(*outlier_, host, r, status, now);
}

void ClusterGuard::Finish() {
  if (!reported_ && info_ != nullptr && loop_ != nullptr) {
    ReportTry(info_->upstream_host, info_->response_code, info_->response_flags, loop_->Now());
  }
  reported_ = true;
  if (counters_ == nullptr) return;
  while (retries_held_ > 0) ReleaseRetry();
  if (holds_connection_) counters_->ReleaseConnection();
  if (holds_request_) Give(counters_->requests);
  holds_connection_ = holds_request_ = false;
}

io::Task<ClusterGuard> AdmitRequest(const ClusterRuntime* rt, bool http1, const RequestInfo* info,
                                    io::Loop& loop, io::CancelScope* scope) {
  ClusterGuard g;
  if (rt == nullptr) co_return g;
  g.counters_ = rt->counters;
  g.detector_ = rt->detector;
  g.outlier_ = rt->outlier;
  g.max_retries_ = rt->pool.max_retries;
  g.max_per_conn_ = rt->pool.max_requests_per_connection;
  g.connect_timeout_ = rt->pool.connect_timeout;
  g.runtime_ = rt;
  g.info_ = info;
  g.loop_ = &loop;
  BreakerCounters& c = *rt->counters;
  const Admission a = TryAdmit(c, rt->pool, http1);
  if (a == Admission::kOverflow) {
    g.overflow_ = true;
    g.reported_ = true;  // never reached an endpoint
    if (c.pending_overflow != nullptr) c.pending_overflow->Inc();
    co_return g;
  }
  g.holds_request_ = true;
  if (a == Admission::kAdmitted) {
    g.holds_connection_ = http1;
    co_return g;
  }
  // Pending: wait for a connection slot, at most the connect timeout. The
  // check and the registration happen under the lock a releaser takes after
  // giving its slot back, so no wake-up is lost.
  const base::Duration wait = rt->pool.connect_timeout.value_or(std::chrono::seconds(10));
  const base::MonoTime until = loop.Now() + wait;
  bool got = false;
  while (!got) {
    auto wake = std::make_shared<io::Event>(loop);
    {
      std::lock_guard lock(c.mu);
      got = TryConnection(c, rt->pool);
      if (!got) c.waiters.push_back({&loop, wake});
    }
    if (got) break;
    const base::Duration left = until - loop.Now();
    Status woke = absl::DeadlineExceededError("pending request waited too long");
    if (left > base::Duration::zero()) {
      woke = co_await wake->Wait({.scope = scope, .timeout = left});
    }
    if (woke.ok()) continue;  // a slot freed: try for it
    bool still_queued = false;
    {
      std::lock_guard lock(c.mu);
      auto it = std::find_if(c.waiters.begin(), c.waiters.end(),
                             [&](const BreakerCounters::Waiter& x) { return x.wake == wake; });
      still_queued = it != c.waiters.end();
      if (still_queued) c.waiters.erase(it);
    }
    // Woken just as it gave up: pass the freed slot's wake-up on.
    if (!still_queued) c.WakeOne();
    break;  // timed out, or the request went away
  }
  Give(c.pending);
  if (!got) {
    g.overflow_ = true;
    g.reported_ = true;
    if (c.pending_overflow != nullptr) c.pending_overflow->Inc();
    Give(c.requests);
    g.holds_request_ = false;
    co_return g;
  }
  g.holds_connection_ = true;
  co_return g;
}

}  // namespace ambit::waypoint
