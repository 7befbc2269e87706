// Retries: the retryOn truth table, attempts counting, per-try deadlines,
// backoff bounds (waypoint/proxy/retry.h), and the VirtualService /
// HTTPRoute retry compilers with Istio's validation (compile_retry.cc).
#include <doctest/doctest.h>

#include "tests/unit/waypoint/route_fixture.h"
#include "waypoint/proxy/retry.h"

using namespace ambit::waypoint;
using namespace ambit::waypoint::route;
using namespace ambit::waypoint::route::testing;

namespace {

RetryPolicy On(std::string_view tokens, std::vector<int> codes = {}) {
  RetryPolicy p;
  p.num_retries = 3;
  size_t start = 0;
  while (start < tokens.size()) {
    size_t c = tokens.find(',', start);
    if (c == std::string_view::npos) c = tokens.size();
    p.retry_on |= RetryOnBit(tokens.substr(start, c - start));
    start = c + 1;
  }
  p.status_codes = std::move(codes);
  return p;
}

TryResult Status(int s) { return {.outcome = TryOutcome::kResponse, .status = s}; }
TryResult Grpc(int g) {
  return {.outcome = TryOutcome::kResponse, .status = 200, .grpc_status = g};
}
TryResult Outcome(TryOutcome o) { return {.outcome = o}; }

std::string Vs(const std::string& retries) {
  return "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
         "metadata: {name: t, namespace: demo}\nspec:\n  hosts: [reviews]\n  http:\n"
         "  - route: [{destination: {host: ratings}}]\n    retries: " +
         retries + "\n";
}

std::string Hr(const std::string& rule_extra) {
  return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
         "metadata: {name: hr, namespace: demo}\nspec:\n"
         "  parentRefs: [{group: \"\", kind: Service, name: reviews, port: 80}]\n"
         "  rules:\n  - backendRefs: [{name: ratings, port: 80}]\n" +
         rule_extra;
}

const Route& OnlyRoute(const Compiled& c) {
  const RouteTable* t = c.Table("demo/reviews.demo.svc.cluster.local", 80);
  REQUIRE_MESSAGE(t != nullptr, c.AllFindings());
  REQUIRE(t->routes.size() == 1);
  return t->routes[0];
}

bool AnyInvalid(const Compiled& c) {
  for (const auto& f : c.result.findings) {
    if (f.invalid) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("retryOn: each token covers exactly its outcomes") {
  using O = TryOutcome;
  // 5xx: every 5xx and every no-response outcome.
  const RetryPolicy p5 = On("5xx");
  CHECK(Retriable(p5, Status(500)));
  CHECK(Retriable(p5, Status(503)));
  CHECK(Retriable(p5, Status(599)));
  CHECK_FALSE(Retriable(p5, Status(409)));
  CHECK_FALSE(Retriable(p5, Status(200)));
  for (O o : {O::kConnectFailure, O::kRefusedStream, O::kResetBeforeRequest, O::kReset}) {
    CHECK(Retriable(p5, Outcome(o)));
  }
  // gateway-error: 502/503/504 only, plus resets.
  const RetryPolicy pg = On("gateway-error");
  CHECK(Retriable(pg, Status(502)));
  CHECK(Retriable(pg, Status(503)));
  CHECK(Retriable(pg, Status(504)));
  CHECK_FALSE(Retriable(pg, Status(500)));
  CHECK(Retriable(pg, Outcome(O::kReset)));
  // reset: no response at all, never a status.
  const RetryPolicy pr = On("reset");
  CHECK(Retriable(pr, Outcome(O::kReset)));
  CHECK(Retriable(pr, Outcome(O::kConnectFailure)));
  CHECK_FALSE(Retriable(pr, Status(503)));
  // connect-failure: only that.
  const RetryPolicy pc = On("connect-failure");
  CHECK(Retriable(pc, Outcome(O::kConnectFailure)));
  CHECK_FALSE(Retriable(pc, Outcome(O::kReset)));
  CHECK_FALSE(Retriable(pc, Outcome(O::kRefusedStream)));
  CHECK_FALSE(Retriable(pc, Status(503)));
  // refused-stream: only that.
  const RetryPolicy prs = On("refused-stream");
  CHECK(Retriable(prs, Outcome(O::kRefusedStream)));
  CHECK_FALSE(Retriable(prs, Outcome(O::kReset)));
  // reset-before-request: failures before the upstream had the request.
  const RetryPolicy prb = On("reset-before-request");
  CHECK(Retriable(prb, Outcome(O::kResetBeforeRequest)));
  CHECK(Retriable(prb, Outcome(O::kConnectFailure)));
  CHECK_FALSE(Retriable(prb, Outcome(O::kReset)));
  // retriable-4xx: 409 only.
  const RetryPolicy p4 = On("retriable-4xx");
  CHECK(Retriable(p4, Status(409)));
  CHECK_FALSE(Retriable(p4, Status(404)));
  CHECK_FALSE(Retriable(p4, Status(503)));
  // numeric codes.
  const RetryPolicy pn = On("retriable-status-codes", {503, 429});
  CHECK(Retriable(pn, Status(503)));
  CHECK(Retriable(pn, Status(429)));
  CHECK_FALSE(Retriable(pn, Status(500)));
  // envoy-ratelimited: the header, not the status.
  const RetryPolicy prl = On("envoy-ratelimited");
  TryResult limited = Status(429);
  CHECK_FALSE(Retriable(prl, limited));
  limited.rate_limited = true;
  CHECK(Retriable(prl, limited));
  // gRPC names on grpc-status.
  CHECK(Retriable(On("cancelled"), Grpc(1)));
  CHECK(Retriable(On("deadline-exceeded"), Grpc(4)));
  CHECK(Retriable(On("resource-exhausted"), Grpc(8)));
  CHECK(Retriable(On("internal"), Grpc(13)));
  CHECK(Retriable(On("unavailable"), Grpc(14)));
  CHECK_FALSE(Retriable(On("unavailable"), Grpc(13)));
  CHECK_FALSE(Retriable(On("unavailable"), Status(503)));
  // A per-try timeout is retried whatever the conditions.
  CHECK(Retriable(On("retriable-4xx"), Outcome(O::kPerTryTimeout)));
  // Istio's default: connect-failure,refused-stream,unavailable,cancelled (no 503).
  const RetryPolicy& d = IstioDefaultRetry();
  CHECK(d.num_retries == 2);
  CHECK(d.RetryOnText() == "connect-failure,refused-stream,cancelled,unavailable");
  CHECK(Retriable(d, Outcome(O::kConnectFailure)));
  CHECK(Retriable(d, Grpc(14)));
  CHECK_FALSE(Retriable(d, Status(503)));
  CHECK_FALSE(Retriable(d, Outcome(O::kReset)));
}

TEST_CASE("attempts count retries after the first try; limits, replay, backoff") {
  RetryPolicy p = On("5xx");
  p.num_retries = 2;
  RetryState s(p, std::nullopt);
  s.StartTry();
  CHECK(s.Decide(Status(503), true) == RetryState::Decision::kRetry);
  CHECK(s.Decide(Status(404), true) == RetryState::Decision::kNotRetriable);
  CHECK(s.Decide(Status(503), false) == RetryState::Decision::kNotReplayable);
  s.StartTry();
  CHECK(s.Decide(Status(503), true) == RetryState::Decision::kRetry);
  s.StartTry();  // the third try = the second retry: none left
  CHECK(s.Decide(Status(503), true) == RetryState::Decision::kLimitExceeded);
  CHECK(s.tries() == 3);

  RetryPolicy off = p;
  off.num_retries = 0;
  RetryState none(off, std::nullopt);
  none.StartTry();
  CHECK(none.Decide(Status(503), true) == RetryState::Decision::kNotRetriable);

  // Backoff: uniform in [0, (2^n - 1) × 25 ms), never above 250 ms.
  const ambit::base::MonoTime t0{};
  RetryState b(p, std::nullopt);
  for (uint64_t r : {0ull, 1ull, 24'999'999ull, 99'999'999'999ull}) {
    RetryState one(p, std::nullopt);
    auto w = one.NextBackoff(t0, r);
    REQUIRE(w.has_value());
    CHECK(*w < std::chrono::milliseconds(25));
  }
  std::chrono::nanoseconds worst{0};
  for (int i = 0; i < 12; ++i) {
    auto w = b.NextBackoff(t0, ~0ull - static_cast<uint64_t>(i));
    REQUIRE(w.has_value());
    CHECK(*w <= std::chrono::milliseconds(250));
    worst = std::max(worst, *w);
  }
  CHECK(worst > std::chrono::milliseconds(100));  // it grew

  // The overall deadline cuts backoff and per-try deadlines.
  p.per_try_timeout = std::chrono::seconds(2);
  RetryState dl(p, t0 + std::chrono::milliseconds(2500));
  CHECK(*dl.TryDeadline(t0) == t0 + std::chrono::seconds(2));
  CHECK(*dl.TryDeadline(t0 + std::chrono::seconds(1)) == t0 + std::chrono::milliseconds(2500));
  CHECK_FALSE(dl.NextBackoff(t0 + std::chrono::milliseconds(2499), ~0ull).has_value());
  CHECK(dl.OverallExpired(t0 + std::chrono::milliseconds(2500)));
}

TEST_CASE("VirtualService retries: Istio's fields, numeric codes, and its validation") {
  {
    Compiled c = CompileWorld(
        Vs("{attempts: 3, perTryTimeout: 2s, retryOn: \"5xx,reset,connect-failure,retriable-4xx\"}"));
    CHECK_MESSAGE(c.result.findings.empty(), c.AllFindings());
    const RetryPolicy& p = OnlyRoute(c).Retry();
    CHECK(p.num_retries == 3);
    CHECK(p.per_try_timeout == std::chrono::seconds(2));
    CHECK(p.retry_on == (kRetry5xx | kRetryReset | kRetryConnectFailure | kRetryRetriable4xx));
    CHECK_FALSE(p.is_default);
  }
  {
    Compiled c = CompileWorld(Vs("{attempts: 2, retryOn: \"gateway-error, 503,429\"}"));
    const RetryPolicy& p = OnlyRoute(c).Retry();
    CHECK(p.status_codes == std::vector<int>{503, 429});
    CHECK((p.retry_on & kRetryRetriableStatusCodes) != 0);
    CHECK(p.RetryOnText() == "gateway-error,503,429");
  }
  {
    // No retryOn: Istio's default conditions; no attempts: disabled.
    Compiled c = CompileWorld(Vs("{attempts: 4}"));
    CHECK(OnlyRoute(c).Retry().num_retries == 4);
    CHECK(OnlyRoute(c).Retry().retry_on == IstioDefaultRetry().retry_on);
    Compiled none = CompileWorld(Vs("{}"));
    CHECK(OnlyRoute(none).Retry().num_retries == 0);
  }
  {
    Compiled c = CompileWorld(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: t, namespace: demo}\nspec:\n  hosts: [reviews]\n  http:\n"
        "  - route: [{destination: {host: ratings}}]\n");
    CHECK(OnlyRoute(c).Retry().is_default);
  }
  // Refused as istiod refuses them: the whole change is invalid.
  for (const char* bad : {"{attempts: 3, retryOn: \"5xx,sometimes\"}", "{attempts: -1}",
                          "{attempts: 3, perTryTimeout: 0s}", "{attempts: 3, perTryTimeout: soon}",
                          "{attempts: 0, retryOn: 5xx}", "{attempts: 3, retryOn: \"999\"}"}) {
    Compiled c = CompileWorld(Vs(bad));
    INFO(bad);
    CHECK_MESSAGE(AnyInvalid(c), c.AllFindings());
  }
  Compiled c = CompileWorld(Vs("{attempts: 3, retryOn: \"5xx,sometimes\"}"));
  CHECK(c.FindingsWith("spec.http[0].retries.retryOn: 'sometimes' is not a valid retryOn policy")
            .size() == 1);
  // file:line of the retryOn value (line 8 of the document).
  CHECK_MESSAGE(c.FindingsWith("routes.yaml:" + std::to_string(DocLine(8)) + ":").size() == 1,
                c.AllFindings());
}

TEST_CASE("HTTPRoute retry: attempts default 2, codes, backoff; backendRequest is per try") {
  {
    Compiled c = CompileWorld(Hr(
        "    retry: {codes: [500, 503], backoff: 100ms}\n"
        "    timeouts: {request: 10s, backendRequest: 2s}\n"));
    CHECK_MESSAGE(c.result.findings.empty(), c.AllFindings());
    const Route& r = OnlyRoute(c);
    CHECK(r.timeout == std::chrono::seconds(10));
    const RetryPolicy& p = r.Retry();
    CHECK(p.num_retries == 2);
    CHECK(p.status_codes == std::vector<int>{500, 503});
    CHECK(p.backoff_base == std::chrono::milliseconds(100));
    CHECK(p.per_try_timeout == std::chrono::seconds(2));
    CHECK(p.RetryOnText() == "connect-failure,refused-stream,cancelled,unavailable,500,503");
  }
  {
    // Without retry, backendRequest bounds the request (the shorter wins).
    Compiled c = CompileWorld(Hr("    timeouts: {request: 10s, backendRequest: 2s}\n"));
    CHECK(OnlyRoute(c).timeout == std::chrono::seconds(2));
    CHECK(OnlyRoute(c).Retry().is_default);
  }
  {
    Compiled c = CompileWorld(Hr("    retry: {attempts: 0}\n"));
    CHECK(OnlyRoute(c).Retry().num_retries == 0);
    CHECK(OnlyRoute(c).Retry().retry_on == 0);
  }
  for (const char* bad : {"    retry: {codes: [200]}\n", "    retry: {attempts: -2}\n",
                          "    retry: {backoff: fast}\n"}) {
    Compiled c = CompileWorld(Hr(bad));
    INFO(bad);
    CHECK_MESSAGE(AnyInvalid(c), c.AllFindings());
  }
}
