// Circuit-breaker admission (exact limits, no queueing past
// http1MaxPendingRequests, retries) and outlier detection timing with an
// explicit clock: ejection after N errors, return after baseEjectionTime,
// growth with repeated ejections, maxEjectionPercent, minHealthPercent.
#include <doctest/doctest.h>

#include "waypoint/proxy/circuit_breaker.h"
#include "waypoint/proxy/outlier.h"

using namespace ambit::waypoint;
using ambit::base::MonoTime;
using std::chrono::seconds;

namespace {

route::ConnectionPoolPolicy Pool(uint32_t max_conn, uint32_t pending, uint32_t max_rq) {
  route::ConnectionPoolPolicy p;
  p.max_connections = max_conn;
  p.max_pending_requests = pending;
  p.max_requests = max_rq;
  return p;
}

route::OutlierPolicy Outlier(uint32_t max_percent = 50) {
  route::OutlierPolicy p;
  p.consecutive_5xx = 5;
  p.interval = seconds(10);
  p.base_ejection_time = seconds(30);
  p.max_ejection_percent = max_percent;
  return p;
}

const MonoTime t0 = MonoTime(std::chrono::hours(1));

void Fail(OutlierDetector& d, const route::OutlierPolicy& p, const std::string& host, int n,
          MonoTime at, int status = 500) {
  for (int i = 0; i < n; ++i) d.Report(p, host, OutlierDetector::Result::kServerError, status, at);
}

}  // namespace

TEST_CASE("http2MaxRequests: exactly the limit in flight, the next overflows") {
  BreakerCounters c;
  const auto p = Pool(route::kUnlimited, route::kUnlimited, 2);
  CHECK(TryAdmit(c, p, false) == Admission::kAdmitted);
  CHECK(TryAdmit(c, p, false) == Admission::kAdmitted);
  CHECK(TryAdmit(c, p, false) == Admission::kOverflow);
  CHECK(c.requests == 2);  // the overflowed one holds nothing
  c.requests.fetch_sub(1);
  CHECK(TryAdmit(c, p, false) == Admission::kAdmitted);
}

TEST_CASE("maxConnections + http1MaxPendingRequests: one busy, one pending, the rest overflow") {
  BreakerCounters c;
  const auto p = Pool(1, 1, route::kUnlimited);
  CHECK(TryAdmit(c, p, true) == Admission::kAdmitted);
  CHECK(TryAdmit(c, p, true) == Admission::kPending);
  CHECK(TryAdmit(c, p, true) == Admission::kOverflow);
  CHECK(c.connections == 1);
  CHECK(c.pending == 1);
  CHECK(c.requests == 2);
  CHECK_FALSE(TryConnection(c, p));
  c.connections.fetch_sub(1);  // the busy one finished
  CHECK(TryConnection(c, p));
}

TEST_CASE("HTTP/2 upstreams are not bound by maxConnections") {
  BreakerCounters c;
  const auto p = Pool(1, 1, route::kUnlimited);
  for (int i = 0; i < 5; ++i) CHECK(TryAdmit(c, p, false) == Admission::kAdmitted);
  CHECK(c.connections == 0);
}

TEST_CASE("outlier: ejected after 5 consecutive 5xx, back after baseEjectionTime") {
  OutlierDetector d;
  const auto p = Outlier();
  CHECK_FALSE(d.Filtering(p, 4, t0));
  Fail(d, p, "10.0.0.1:8080", 4, t0);
  CHECK_FALSE(d.Ejected("10.0.0.1:8080", t0));
  Fail(d, p, "10.0.0.1:8080", 1, t0);
  CHECK(d.Ejected("10.0.0.1:8080", t0));
  CHECK(d.ejected_count() == 1);
  CHECK(d.Filtering(p, 4, t0 + seconds(1)));
  CHECK(d.Ejected("10.0.0.1:8080", t0 + seconds(29)));
  CHECK_FALSE(d.Ejected("10.0.0.1:8080", t0 + seconds(30)));
  CHECK(d.ejected_count() == 0);
  CHECK_FALSE(d.Filtering(p, 4, t0 + seconds(30)));
}

TEST_CASE("outlier: a success in between resets the run") {
  OutlierDetector d;
  const auto p = Outlier();
  d.Filtering(p, 2, t0);
  Fail(d, p, "h:1", 4, t0);
  d.Report(p, "h:1", OutlierDetector::Result::kSuccess, 200, t0);
  Fail(d, p, "h:1", 4, t0);
  CHECK_FALSE(d.Ejected("h:1", t0));
  Fail(d, p, "h:1", 1, t0);
  CHECK(d.Ejected("h:1", t0));
}

TEST_CASE("outlier: repeated ejections last longer; intervals in service shrink it again") {
  OutlierDetector d;
  const auto p = Outlier(100);
  d.Filtering(p, 2, t0);
  Fail(d, p, "h:1", 5, t0);
  CHECK(d.Ejected("h:1", t0 + seconds(29)));
  CHECK_FALSE(d.Ejected("h:1", t0 + seconds(30)));
  // Fails again right away: 2 × 30s.
  Fail(d, p, "h:1", 5, t0 + seconds(31));
  CHECK(d.Ejected("h:1", t0 + seconds(31 + 59)));
  CHECK_FALSE(d.Ejected("h:1", t0 + seconds(31 + 60)));
  // Two intervals (20s) back in service take the multiplier back to 0.
  const MonoTime later = t0 + seconds(91 + 20);
  Fail(d, p, "h:1", 5, later);
  CHECK(d.Ejected("h:1", later + seconds(29)));
  CHECK_FALSE(d.Ejected("h:1", later + seconds(30)));
}

TEST_CASE("outlier: the growth stops at max_ejection_time") {
  OutlierDetector d;
  auto p = Outlier(100);
  p.base_ejection_time = seconds(200);
  p.max_ejection_time = seconds(300);
  d.Filtering(p, 1, t0);
  Fail(d, p, "h:1", 5, t0);
  MonoTime back = t0 + seconds(200);
  CHECK_FALSE(d.Ejected("h:1", back));
  Fail(d, p, "h:1", 5, back);
  CHECK(d.Ejected("h:1", back + seconds(299)));
  CHECK_FALSE(d.Ejected("h:1", back + seconds(300)));  // not 400
}

TEST_CASE("outlier: never more than maxEjectionPercent out") {
  OutlierDetector d;
  const auto p = Outlier(50);
  d.Filtering(p, 4, t0);
  for (const char* h : {"a:1", "b:1", "c:1", "d:1"}) Fail(d, p, h, 5, t0);
  CHECK(d.ejected_count() == 2);  // 2 of 4 = 50%
  CHECK(d.Ejected("a:1", t0));
  CHECK(d.Ejected("b:1", t0));
  CHECK_FALSE(d.Ejected("c:1", t0));
  CHECK_FALSE(d.Ejected("d:1", t0));
  // Two endpoints at 50%: one may go, never both.
  OutlierDetector two;
  two.Filtering(p, 2, t0);
  Fail(two, p, "a:1", 5, t0);
  Fail(two, p, "b:1", 50, t0);
  CHECK(two.ejected_count() == 1);
  // Envoy's default 10% with three endpoints ejects none.
  OutlierDetector three;
  three.Filtering(p, 3, t0);
  Fail(three, Outlier(10), "a:1", 5, t0);
  CHECK(three.ejected_count() == 0);
}

TEST_CASE("outlier: below minHealthPercent the picker ignores ejection (panic)") {
  OutlierDetector d;
  auto p = Outlier(100);
  p.min_health_percent = 60;
  d.Filtering(p, 2, t0);
  Fail(d, p, "a:1", 5, t0);
  CHECK(d.Ejected("a:1", t0));
  CHECK_FALSE(d.Filtering(p, 2, t0));  // 50% healthy < 60%: all endpoints take requests
  p.min_health_percent = 50;
  CHECK(d.Filtering(p, 2, t0));  // 50% is enough
}

TEST_CASE("outlier: gateway errors and local-origin failures") {
  auto p = Outlier(100);
  p.consecutive_5xx = 0;
  p.consecutive_gateway_errors = 3;
  OutlierDetector d;
  d.Filtering(p, 1, t0);
  Fail(d, p, "h:1", 2, t0, 502);
  Fail(d, p, "h:1", 1, t0, 500);  // a 5xx that is not a gateway error breaks the run
  Fail(d, p, "h:1", 2, t0, 503);
  CHECK_FALSE(d.Ejected("h:1", t0));
  d.Report(p, "h:1", OutlierDetector::Result::kLocalConnect, 0, t0);  // counts as 503
  CHECK(d.Ejected("h:1", t0));

  auto split = Outlier(100);
  split.split_local_origin = true;
  split.consecutive_local_origin = 2;
  OutlierDetector s;
  s.Filtering(split, 1, t0);
  s.Report(split, "h:1", OutlierDetector::Result::kLocalTimeout, 0, t0);
  Fail(s, split, "h:1", 4, t0);  // 5xx counted apart; this resets the local run
  s.Report(split, "h:1", OutlierDetector::Result::kLocalConnect, 0, t0);
  CHECK_FALSE(s.Ejected("h:1", t0));
  s.Report(split, "h:1", OutlierDetector::Result::kLocalConnect, 0, t0);
  CHECK(s.Ejected("h:1", t0));
}

TEST_CASE("outlier filter keeps ejected endpoints out of the picker") {
  OutlierDetector d;
  const auto p = Outlier(50);
  UpstreamEndpoint a, b;
  a.address = *ambit::net::SocketAddress::Parse("10.0.0.1:8080");
  b.address = *ambit::net::SocketAddress::Parse("10.0.0.2:8080");
  d.Filtering(p, 2, t0);
  Fail(d, p, "10.0.0.1:8080", 5, t0);
  OutlierFilter f(d, p, t0 + seconds(1));
  CHECK(f.Begin(2));
  CHECK(f.Excluded(a));
  CHECK_FALSE(f.Excluded(b));
  OutlierFilter later(d, p, t0 + seconds(30));
  CHECK_FALSE(later.Begin(2));
}

TEST_CASE("a pending request gets the connection a finished one frees; past connectTimeout it overflows") {
  auto loop = ambit::io::Loop::Create();
  REQUIRE(loop.ok());
  ambit::io::Loop& l = **loop;
  ClusterRuntime rt;
  rt.name = "c";
  rt.pool = Pool(1, 1, route::kUnlimited);
  rt.pool.connect_timeout = std::chrono::milliseconds(300);
  rt.counters = std::make_shared<BreakerCounters>();
  ClusterGuard first = l.BlockOn(AdmitRequest(&rt, true, nullptr, l, nullptr));
  REQUIRE_FALSE(first.overflow());
  CHECK(rt.counters->connections == 1);
  // The busy request ends 30ms from now; the pending one takes over.
  l.Spawn([](ambit::io::Loop& lp, ClusterGuard* g) -> ambit::io::Task<void> {
    (void)co_await lp.Sleep(std::chrono::milliseconds(30));
    g->Finish();
  }(l, &first));
  const auto t0 = l.Now();
  ClusterGuard second = l.BlockOn(AdmitRequest(&rt, true, nullptr, l, nullptr));
  CHECK_FALSE(second.overflow());
  CHECK(l.Now() - t0 >= std::chrono::milliseconds(25));
  CHECK(l.Now() - t0 < std::chrono::milliseconds(250));
  CHECK(rt.counters->connections == 1);
  CHECK(rt.counters->pending == 0);
  // Nobody frees this one: the wait ends at connectTimeout with UO.
  const auto t1 = l.Now();
  ClusterGuard third = l.BlockOn(AdmitRequest(&rt, true, nullptr, l, nullptr));
  CHECK(third.overflow());
  CHECK(l.Now() - t1 >= std::chrono::milliseconds(290));
  CHECK(rt.counters->requests == 1);
  CHECK(rt.counters->pending == 0);
  CHECK(rt.counters->waiters.empty());
  second.Finish();
  CHECK(rt.counters->requests == 0);
  CHECK(rt.counters->connections == 0);
}

TEST_CASE("maxRetries: retry slots per cluster, released with the request") {
  auto loop = ambit::io::Loop::Create();
  REQUIRE(loop.ok());
  ClusterRuntime rt;
  rt.pool.max_retries = 1;
  rt.counters = std::make_shared<BreakerCounters>();
  ClusterGuard a = (*loop)->BlockOn(AdmitRequest(&rt, false, nullptr, **loop, nullptr));
  ClusterGuard b = (*loop)->BlockOn(AdmitRequest(&rt, false, nullptr, **loop, nullptr));
  CHECK(a.TryAcquireRetry());
  CHECK_FALSE(b.TryAcquireRetry());
  a.Finish();
  CHECK(b.TryAcquireRetry());
  b.ReleaseRetry();
  CHECK(rt.counters->retries == 0);
  ClusterGuard none;  // no DestinationRule: unlimited
  CHECK(none.TryAcquireRetry());
}
