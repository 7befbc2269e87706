// DestinationRule connectionPool on the upstream side: idle timeouts of the
// HTTP/1.1 pool and of TCP relays (real streams over socketpairs on a
// loop), the HTTP/1.1 → HTTP/2 conversion of h2UpgradePolicy: UPGRADE, the
// h2 limits taken from a cluster, and retries across locality priorities
// (retryRemoteLocalities).
#include <doctest/doctest.h>

#include <sys/socket.h>

#include "common/io/fd_stream.h"
#include "common/io/loop.h"
#include "tests/unit/mesh/fixtures.h"
#include "waypoint/proxy/circuit_breaker.h"
#include "waypoint/proxy/cluster.h"
#include "waypoint/proxy/h2_upgrade.h"
#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/retry.h"
#include "waypoint/proxy/upstream.h"

using namespace ambit;
using namespace ambit::waypoint;
using std::chrono::milliseconds;

namespace {

std::unique_ptr<io::Loop> NewLoop() {
  auto loop = io::Loop::Create();
  REQUIRE(loop.ok());
  return std::move(*loop);
}

// Two connected stream ends on `loop`.
std::pair<std::unique_ptr<io::ByteStream>, std::unique_ptr<io::ByteStream>> Pair(io::Loop& loop) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  return {std::make_unique<io::FdStream>(loop, fds[0]),
          std::make_unique<io::FdStream>(loop, fds[1])};
}

UpstreamConn Conn(io::Loop& loop, std::unique_ptr<io::ByteStream>* peer, base::Duration idle) {
  auto [a, b] = Pair(loop);
  UpstreamConn c;
  c.stream = std::move(a);
  *peer = std::move(b);
  c.endpoint = "ep-1";
  c.live_key = "pod-1";
  c.cluster = "inbound-vip|80|http|echo.demo.svc.cluster.local";
  c.idle_timeout = idle;
  return c;
}

void Nap(io::Loop& loop, base::Duration d) {
  loop.BlockOn([](io::Loop& l, base::Duration d) -> io::Task<void> {
    (void)co_await l.Sleep(d);
  }(loop, d));
}

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace

TEST_CASE("Http1Pool: a connection idle past the cluster's idleTimeout is closed and counted") {
  auto loop = NewLoop();
  UpstreamOptions options;  // pool default: 60s
  Http1Pool pool(*loop, options);
  std::vector<std::string> closed;
  pool.SetOnIdleClose([&](const std::string& c) { closed.push_back(c); });
  std::unique_ptr<io::ByteStream> peer;
  pool.Put(Conn(*loop, &peer, milliseconds(50)));
  auto again = pool.Take("ep-1");
  REQUIRE(again.has_value());  // fresh: reused
  CHECK(closed.empty());
  pool.Put(std::move(*again));
  Nap(*loop, milliseconds(80));
  CHECK_FALSE(pool.Take("ep-1").has_value());  // past 50ms: never reused
  REQUIRE(closed.size() == 1);
  CHECK(closed[0] == "inbound-vip|80|http|echo.demo.svc.cluster.local");
  // The sweeper closes one nobody asks for; a connection without a cluster
  // timeout keeps the pool default.
  std::unique_ptr<io::ByteStream> p2, p3;
  pool.Put(Conn(*loop, &p2, milliseconds(30)));
  UpstreamConn keep = Conn(*loop, &p3, base::Duration::zero());
  keep.endpoint = "ep-2";
  pool.Put(std::move(keep));
  Nap(*loop, milliseconds(50));
  pool.SweepIdle();
  CHECK(closed.size() == 2);
  CHECK(pool.idle() == 1);
  CHECK(pool.Take("ep-2").has_value());
}

TEST_CASE("Http1Pool: an upgraded request's stream is never pooled") {
  auto loop = NewLoop();
  UpstreamOptions options;
  Http1Pool pool(*loop, options);
  std::unique_ptr<io::ByteStream> peer;
  UpstreamConn c = Conn(*loop, &peer, base::Duration::zero());
  c.poolable = false;
  pool.Put(std::move(c));
  CHECK(pool.idle() == 0);
}

TEST_CASE("RelayStreamsIdle: bytes keep it open; silence past the timeout closes both sides") {
  auto loop = NewLoop();
  auto [client, down] = Pair(*loop);
  auto [up, server] = Pair(*loop);
  io::CancelScope scope;
  RelayTotals totals;
  bool done = false;
  loop->Spawn([](io::Loop& l, io::ByteStream& d, io::ByteStream& u, io::CancelScope* s,
                 RelayTotals* t, bool* done) -> io::Task<void> {
    *t = co_await RelayStreamsIdle(l, d, u, s, milliseconds(120));
    *done = true;
  }(*loop, *down, *up, &scope, &totals, &done));
  const auto t0 = loop->Now();
  // Traffic every 60ms for 300ms: never idle for 120ms.
  auto talk = [](io::Loop& l, io::ByteStream& c, io::ByteStream& srv) -> io::Task<int> {
    int got = 0;
    for (int i = 0; i < 5; ++i) {
      (void)co_await c.Write(Bytes("ping"), {});
      auto r = co_await srv.Peek({.timeout = milliseconds(500)});
      if (r.ok() && !r->empty()) {
        got += static_cast<int>(r->size());
        srv.Consume(r->size());
      }
      (void)co_await l.Sleep(milliseconds(60));
    }
    co_return got;
  };
  CHECK(loop->BlockOn(talk(*loop, *client, *server)) == 20);
  CHECK_FALSE(done);
  CHECK(loop->Now() - t0 >= milliseconds(290));
  // Now silence: the relay ends about 120ms after the last byte.
  auto wait = [](io::Loop& l, bool* done) -> io::Task<void> {
    for (int i = 0; i < 100 && !*done; ++i) (void)co_await l.Sleep(milliseconds(10));
  };
  loop->BlockOn(wait(*loop, &done));
  CHECK(done);
  CHECK(totals.idle_timed_out);
  CHECK(totals.up == 20);
  // The client sees its connection end.
  auto r = loop->BlockOn(client->Peek({.timeout = milliseconds(500)}));
  CHECK((!r.ok() || r->empty()));
}

TEST_CASE("h2 upgrade: the HTTP/1.1 head becomes HTTP/2 headers") {
  http1::RequestHead head;
  head.method = "POST";
  head.target = "/echo?x=1";
  head.headers = {{"Host", "echo.demo:80"},  {"Content-Length", "5"},
                  {"Connection", "keep-alive, X-Drop"}, {"X-Drop", "1"},
                  {"Keep-Alive", "timeout=5"}, {"TE", "trailers"},
                  {"Expect", "100-continue"}, {"X-Request-Id", "abc"}};
  const http2::H2Headers h = UpgradeRequestHeaders(head);
  REQUIRE(h.size() >= 4);
  CHECK(h[0].name == ":method");
  CHECK(h[0].value == "POST");
  CHECK(h[1].value == "http");
  CHECK(h[2].name == ":authority");
  CHECK(h[2].value == "echo.demo:80");
  CHECK(h[3].value == "/echo?x=1");
  auto has = [&](std::string_view n) {
    for (const auto& x : h) {
      if (x.name == n) return true;
    }
    return false;
  };
  CHECK(has("content-length"));
  CHECK(has("x-request-id"));
  CHECK(has("te"));
  CHECK_FALSE(has("host"));
  CHECK_FALSE(has("connection"));
  CHECK_FALSE(has("keep-alive"));
  CHECK_FALSE(has("x-drop"));
  CHECK_FALSE(has("expect"));
}

TEST_CASE("h2 upgrade: the HTTP/2 response head becomes HTTP/1.1 with its framing") {
  std::string out;
  CHECK(AppendDowngradedHead(out, {{":status", "200"}, {"content-type", "text/plain"}}, false,
                             false));
  CHECK(out.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(out.find("transfer-encoding: chunked\r\n") != std::string::npos);
  out.clear();
  CHECK_FALSE(AppendDowngradedHead(out, {{":status", "200"}, {"content-length", "3"}}, false,
                                   false));
  CHECK(out.find("content-length: 3\r\n") != std::string::npos);
  CHECK(out.find("chunked") == std::string::npos);
  out.clear();
  CHECK_FALSE(AppendDowngradedHead(out, {{":status", "503"}}, true, false));  // ended
  CHECK(out.starts_with("HTTP/1.1 503 "));
  CHECK(out.find("content-length: 0\r\n") != std::string::npos);
  out.clear();
  CHECK_FALSE(AppendDowngradedHead(out, {{":status", "204"}}, false, false));
  CHECK(out.find("content-length") == std::string::npos);
  out.clear();
  CHECK_FALSE(AppendDowngradedHead(out, {{":status", "200"}}, false, true));  // HEAD
}

TEST_CASE("useClientProtocol wins over h2UpgradePolicy; the h2 limits follow the cluster") {
  route::ConnectionPoolPolicy p;
  CHECK_FALSE(p.UpgradeHttp1());
  p.h2_upgrade = route::ConnectionPoolPolicy::H2Upgrade::kUpgrade;
  CHECK(p.UpgradeHttp1());
  p.use_client_protocol = true;
  CHECK_FALSE(p.UpgradeHttp1());
  ClusterRuntime rt;
  rt.pool.max_concurrent_streams = 3;
  rt.pool.max_requests_per_connection = 7;
  rt.pool.http_idle_timeout = std::chrono::seconds(2);
  rt.pool.connect_timeout = milliseconds(250);
  rt.counters = std::make_shared<BreakerCounters>();
  const H2Limits l = H2LimitsFor(&rt, "c");
  CHECK(l.max_streams == 3);
  CHECK(l.max_per_session == 7);
  CHECK(l.idle_timeout == std::chrono::seconds(2));
  CHECK(l.connect_timeout == milliseconds(250));
  CHECK(l.breaker == rt.counters.get());
  CHECK(l.cluster == "c");
  const H2Limits none = H2LimitsFor(nullptr, "c");
  CHECK(none.breaker == nullptr);
  CHECK(none.max_streams == 0);
}

TEST_CASE("HTTP/2 pending slots: http1MaxPendingRequests bounds requests waiting for a stream") {
  BreakerCounters c;
  route::ConnectionPoolPolicy p;
  p.max_connections = 1;
  p.max_pending_requests = 1;
  CHECK(TryConnection(c, p));      // the one session
  CHECK_FALSE(TryConnection(c, p));
  CHECK(TryPending(c, p));         // one may wait
  CHECK_FALSE(TryPending(c, p));   // the next overflows
  GivePending(c);
  CHECK(TryPending(c, p));
}

TEST_CASE("retryRemoteLocalities: tries 3-4 skip the priorities of tries 1-2 (update frequency 2)") {
  route::RetryPolicy policy;
  policy.num_retries = 5;
  RetryState off(policy, std::nullopt);
  off.StartTry();
  off.NotePriority(0);
  off.StartTry();
  off.NotePriority(0);
  CHECK(off.ExcludedPriorities() == nullptr);  // flag off: retries stay put
  policy.retry_remote_localities = true;
  RetryState r(policy, std::nullopt);
  CHECK(r.ExcludedPriorities() == nullptr);
  r.StartTry();
  r.NotePriority(0);
  CHECK(r.ExcludedPriorities() == nullptr);  // try 2 uses the normal priority
  r.StartTry();
  r.NotePriority(0);
  const std::vector<uint32_t>* ex = r.ExcludedPriorities();  // for try 3
  REQUIRE(ex != nullptr);
  CHECK(*ex == std::vector<uint32_t>{0, 0});
  r.StartTry();
  r.NotePriority(1);
  CHECK(*r.ExcludedPriorities() == std::vector<uint32_t>{0, 0});  // try 4: same
  r.StartTry();
  r.NotePriority(1);
  CHECK(*r.ExcludedPriorities() == std::vector<uint32_t>{0, 0, 1, 1});
}

TEST_CASE("picker: a retry stays in its locality priority unless that priority is excluded") {
  using namespace ambit::mesh;
  using namespace ambit::mesh::testing;
  WorkloadStore store;
  Service svc = Svc("demo", "echo", "10.96.0.30", 80, 8080);
  REQUIRE(store.UpsertService(svc).ok());
  const char* zones[] = {"z1", "z2"};
  for (int i = 0; i < 2; ++i) {
    Workload w = Pod("demo", "echo-" + std::to_string(i), "10.0.0." + std::to_string(i + 10));
    w.locality = {"r1", zones[i], ""};
    Join(w, svc);
    REQUIRE(store.UpsertWorkload(w).ok());
  }
  Workload wp = Pod("demo", "waypoint", "10.0.0.99");
  wp.locality = {"r1", "z1", ""};
  REQUIRE(store.UpsertWorkload(wp).ok());
  auto snap = store.Build();
  const Service* s = snap->FindServiceByKey(svc.Key());
  const Workload* self = snap->FindWorkload(wp.uid);
  route::TrafficPolicy tp;
  tp.load_balancer = route::LoadBalancerPolicy{};
  tp.outlier_written = true;  // Istio's condition for locality priorities
  EndpointPicker picker;
  EndpointPtr first = picker.Pick(snap, *s, 80, *self, {.policy = &tp});
  REQUIRE(first != nullptr);
  CHECK(first->workload->name == "echo-0");
  CHECK(picker.LastPriority() == 0);
  // A retry avoiding echo-0 stays on it: the only endpoint of its priority.
  const std::string key = first->Key();
  EndpointPtr retry = picker.Pick(snap, *s, 80, *self, {.policy = &tp, .avoid = key});
  REQUIRE(retry != nullptr);
  CHECK(retry->workload->name == "echo-0");
  // Priority 0 excluded (retryRemoteLocalities): the next priority.
  const std::vector<uint32_t> ex{0, 0};
  EndpointPtr remote =
      picker.Pick(snap, *s, 80, *self, {.policy = &tp, .avoid = key, .exclude_priorities = &ex});
  REQUIRE(remote != nullptr);
  CHECK(remote->workload->name == "echo-1");
  CHECK(picker.LastPriority() > 0);
  // Every priority excluded: the exclusion is dropped.
  const std::vector<uint32_t> all{0, 0, picker.LastPriority(), picker.LastPriority()};
  EndpointPtr back = picker.Pick(snap, *s, 80, *self, {.policy = &tp, .exclude_priorities = &all});
  REQUIRE(back != nullptr);
  CHECK(back->workload->name == "echo-0");
}
