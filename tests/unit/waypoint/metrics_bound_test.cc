// The waypoint's request metrics stay bounded under label churn: request
// paths, hosts and methods never become labels; more distinct label sets than
// the registry's per-family cap land in one `overflow` series and are counted
// in ambit_metrics_series_overflow_total; upstream grpc-status values outside
// the gRPC code range do not become label values.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <set>
#include <string>

#include "common/base/clock.h"
#include "common/metrics/registry.h"
#include "waypoint/proxy/request_log.h"

using namespace ambit;
using waypoint::RequestInfo;
using waypoint::RequestMetrics;

namespace {

base::MonoTime Now() { return base::RealClock::Instance().Now(); }

// Distinct label sets (the part before the value) of one family's samples.
std::set<std::string> SeriesOf(const std::string& text, const std::string& name) {
  std::set<std::string> out;
  size_t at = 0;
  while ((at = text.find("\n" + name + "{", at)) != std::string::npos) {
    size_t end = text.find('}', at);
    out.insert(text.substr(at + 1, end - at));
    at = end;
  }
  return out;
}

RequestInfo Request(int i) {
  RequestInfo info;
  info.start = Now();
  info.response_code = 200;
  info.method = "GET";
  info.path = fmt::format("/items/{}", i);  // never a label
  info.authority = fmt::format("host-{}.example", i);
  return info;
}

uint64_t Overflowed(const std::string& text) {
  size_t at = text.find("\nambit_metrics_series_overflow_total ");
  REQUIRE(at != std::string::npos);
  return std::stoull(text.substr(at + 37));
}

}  // namespace

TEST_CASE("distinct paths, hosts and methods add no series") {
  metrics::Registry reg(2);
  RequestMetrics m(reg);
  for (int i = 0; i < 500; ++i) {
    RequestInfo info = Request(i);
    info.method = i % 2 ? "GET" : "POST";
    m.Record(i % 2, info, Now());
  }
  std::string text = reg.Render();
  CHECK(SeriesOf(text, "istio_requests_total").size() == 1);
  CHECK(text.find("/items/") == std::string::npos);
  CHECK(text.find("host-1.example") == std::string::npos);
  CHECK(Overflowed(text) == 0);
}

TEST_CASE("more source identities than the cap: bounded, overflow series, counted") {
  metrics::Registry reg(2);
  constexpr size_t kCap = 64;
  reg.set_max_series(kCap);
  RequestMetrics m(reg);
  constexpr int kDistinct = 1000;
  for (int i = 0; i < kDistinct; ++i) {
    RequestInfo info = Request(i);
    info.source_principal = fmt::format("spiffe://cluster.local/ns/churn/sa/sa-{}", i);
    m.Record(static_cast<size_t>(i) % 2, info, Now());
  }
  std::string text = reg.Render();
  for (const char* fam : {"istio_requests_total", "istio_request_duration_milliseconds_count",
                          "istio_request_bytes_count", "istio_response_bytes_count"}) {
    auto series = SeriesOf(text, fam);
    CAPTURE(fam);
    CHECK(series.size() == kCap + 1);  // the cap (across both shards) + the overflow series
    bool has_overflow = false;
    for (auto& s : series) has_overflow |= s.find("source_principal=\"overflow\"") != std::string::npos;
    CHECK(has_overflow);
  }
  // Every request is still counted: in its own series or in the overflow one.
  uint64_t total = 0;
  size_t at = 0;
  while ((at = text.find("\nistio_requests_total{", at)) != std::string::npos) {
    size_t sp = text.find("} ", at);
    total += std::stoull(text.substr(sp + 2));
    at = sp;
  }
  CHECK(total == kDistinct);
  // Four families, each turned away kDistinct - kCap label sets.
  CHECK(Overflowed(text) == 4 * (kDistinct - kCap));
  CHECK(reg.overflowed() == Overflowed(text));
}

TEST_CASE("upstream grpc-status values outside 0..16 are not label values") {
  metrics::Registry reg(1);
  RequestMetrics m(reg);
  for (int i = 0; i < 300; ++i) {
    RequestInfo info = Request(i);
    info.grpc = true;
    info.grpc_status = i < 17 ? std::to_string(i) : fmt::format("bogus-{}", i);
    if (i >= 200) info.grpc_status = std::to_string(i);  // numeric but no gRPC code
    m.Record(0, info, Now());
  }
  std::string text = reg.Render();
  auto series = SeriesOf(text, "istio_requests_total");
  CHECK(series.size() == 18);  // codes 0..16 and one "no valid status" series
  CHECK(text.find("bogus") == std::string::npos);
  CHECK(text.find("grpc_response_status=\"250\"") == std::string::npos);
  CHECK(text.find("grpc_response_status=\"16\"") != std::string::npos);
}

TEST_CASE("plain HTTP requests carry an empty grpc_response_status, as Envoy's") {
  metrics::Registry reg(1);
  RequestMetrics m(reg);
  m.Record(0, Request(1), Now());
  CHECK(reg.Render().find("request_protocol=\"http\",response_code=\"200\","
                          "grpc_response_status=\"\",") != std::string::npos);
}
