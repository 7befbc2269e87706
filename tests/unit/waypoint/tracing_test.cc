// Tracing at the waypoint: Telemetry + MeshConfig compilation (binding,
// merge, findings), trace context handling per request (StartTraceWith /
// UpstreamTraceHeaders / FinishTrace), and the OTLP / Zipkin JSON encoders.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <chrono>

#include "common/config/loader.h"
#include "common/http1/codec.h"
#include "common/mesh/from_config.h"
#include "waypoint/app/span_json.h"
#include "waypoint/proxy/state.h"
#include "waypoint/proxy/tracing.h"
#include "waypoint/route/tracing_policy.h"

namespace ambit::waypoint {
namespace {

using route::TracingProvider;

constexpr std::string_view kWorld = R"(workloads:
- {uid: c//Pod/demo/waypoint, name: waypoint, namespace: demo, workloadIps: [10.0.0.9],
   labels: {"gateway.networking.k8s.io/gateway-name": waypoint, role: wp}}
- {uid: c//Pod/obs/collector, name: collector, namespace: obs, workloadIps: [10.0.0.7],
   services: {"obs/otel.obs.svc.cluster.local": {4318: 14318}}}
- {uid: c//Pod/demo/echo, name: echo, namespace: demo, workloadIps: [10.0.0.1],
   services: {"demo/echo.demo.svc.cluster.local": {80: 8080}}}
services:
- {name: otel, namespace: obs, hostname: otel.obs.svc.cluster.local, vips: [/10.96.0.7],
   ports: {4318: 14318}}
- {name: echo, namespace: demo, hostname: echo.demo.svc.cluster.local, vips: [/10.96.0.1],
   ports: {80: 8080}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    enableTracing: true
    defaultProviders:
      tracing: [otel]
    extensionProviders:
    - name: otel
      opentelemetry:
        service: otel.obs.svc.cluster.local
        port: 4318
        http: {path: /v1/traces}
    - name: zip
      zipkin: {service: 192.0.2.5, port: 9411}
    - name: grpc-otel
      opentelemetry: {service: otel.obs.svc.cluster.local, port: 4317}
    - name: nowhere
      zipkin: {service: nothing.example, port: 9411}
    - name: als
      envoyFileAccessLog: {path: /dev/stdout}
)";

struct World {
  std::shared_ptr<const mesh::Snapshot> snap;
  route::TelemetryCompileResult result;
  std::string Findings() const {
    std::string s;
    for (const auto& f : result.findings) s += f.ToString() + "\n";
    return s;
  }
  bool Invalid() const {
    for (const auto& f : result.findings) {
      if (f.invalid) return true;
    }
    return false;
  }
};

World Compile(const std::string& docs) {
  std::string text = std::string(kWorld) + (docs.empty() ? "" : "---\n" + docs);
  auto cfg = config::ParseLocalConfig(text, "tracing.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  mesh::WorkloadStore store;
  REQUIRE(mesh::ApplyLocalConfig(*cfg, &store).ok());
  World w;
  w.snap = store.Build();
  const mesh::Workload* self = w.snap->FindWorkload("c//Pod/demo/waypoint");
  REQUIRE(self != nullptr);
  w.result = route::CompileTelemetry(cfg->resources, *w.snap, *self);
  return w;
}

TEST_CASE("MeshConfig providers: resolved through the mesh model or an IP literal") {
  World w = Compile("");
  const auto& p = w.result.config->providers;
  REQUIRE(p.contains("otel"));
  CHECK(p.at("otel")->kind == TracingProvider::Kind::kOpenTelemetry);
  CHECK(p.at("otel")->address == "10.0.0.7:14318");  // the endpoint, at its target port
  CHECK(p.at("otel")->path == "/v1/traces");
  REQUIRE(p.contains("zip"));
  CHECK(p.at("zip")->address == "192.0.2.5:9411");
  CHECK(p.at("zip")->path == "/api/v2/spans");
  CHECK_FALSE(p.contains("grpc-otel"));  // OTLP/gRPC: reported, not usable
  CHECK(w.Findings().find("OTLP over gRPC is not supported") != std::string::npos);
  REQUIRE(p.contains("nowhere"));
  CHECK(p.at("nowhere")->address.empty());
  CHECK(w.Findings().find("no service nothing.example") != std::string::npos);
  CHECK_FALSE(p.contains("als"));
  // defaultProviders.tracing applies without any Telemetry, at 1 %.
  CHECK(w.result.config->waypoint.provider == p.at("otel"));
  CHECK(w.result.config->waypoint.sampling_percent == doctest::Approx(1.0));
  CHECK_FALSE(w.Invalid());
}

TEST_CASE("Telemetry binding and merge: root namespace, namespace, waypoint, service") {
  World w = Compile(R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 10
    customTags:
      team: {literal: {value: a}}
      who: {header: {name: X-User, defaultValue: anon}}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ns, namespace: demo}
spec:
  tracing:
  - randomSamplingPercentage: 20
    customTags:
      team: {literal: {value: b}}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: other-ns, namespace: elsewhere}
spec:
  tracing:
  - randomSamplingPercentage: 99
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: wp, namespace: demo}
spec:
  targetRefs:
  - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}
  tracing:
  - providers: [{name: zip}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: echo, namespace: demo}
spec:
  targetRefs:
  - {kind: Service, group: "", name: echo}
  tracing:
  - randomSamplingPercentage: 0
    disableSpanReporting: true
  metrics:
  - providers: [{name: prometheus}]
)");
  const auto& c = *w.result.config;
  CHECK(c.waypoint.provider->name == "zip");
  CHECK(c.waypoint.sampling_percent == doctest::Approx(20.0));
  REQUIRE(c.waypoint.tags.size() == 2);
  CHECK(c.waypoint.tags[0].tag == "who");
  CHECK(c.waypoint.tags[0].value == "x-user");  // header names compare lower-case
  CHECK(c.waypoint.tags[1].value == "b");       // the namespace overrides the mesh's tag
  const auto& echo = c.For("demo/echo.demo.svc.cluster.local");
  CHECK(echo.sampling_percent == doctest::Approx(0.0));
  CHECK(echo.disable_span_reporting);
  CHECK(echo.provider->name == "zip");
  CHECK(&c.For("demo/other.demo.svc.cluster.local") == &c.waypoint);
  // metrics / accessLogging are compile_observability.cc's (observability_test.cc).
  CHECK(w.Findings().find("spec.metrics") == std::string::npos);
  CHECK_FALSE(w.Invalid());
}

TEST_CASE("Telemetry: invalid values reject the change, selector must match the waypoint") {
  World bad = Compile(R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 150
)");
  CHECK(bad.Invalid());
  CHECK(bad.Findings().find("'150' is not a percentage in 0..100") != std::string::npos);
  World sel = Compile(R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: a, namespace: demo}
spec:
  selector: {matchLabels: {role: other}}
  tracing:
  - randomSamplingPercentage: 50
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: b, namespace: demo}
spec:
  selector: {matchLabels: {role: wp}}
  tracing:
  - randomSamplingPercentage: 70
    providers: [{name: missing}]
)");
  CHECK(sel.result.config->waypoint.sampling_percent == doctest::Approx(70.0));
  CHECK(sel.result.config->waypoint.provider == nullptr);  // unknown provider: tracing off
  CHECK(sel.Findings().find("no tracing provider 'missing'") != std::string::npos);
}

// A request through StartTraceWith / UpstreamTraceHeaders / FinishTrace.
struct Req {
  WaypointState st;
  RequestInfo info;
  std::vector<std::pair<std::string, std::string>> in;
  explicit Req(double percent, TracingProvider::Kind kind = TracingProvider::Kind::kOpenTelemetry) {
    auto cfg = std::make_shared<route::TracingConfig>();
    auto p = std::make_shared<TracingProvider>();
    p->name = "p";
    p->kind = kind;
    p->address = "127.0.0.1:1";
    cfg->waypoint.provider = p;
    cfg->waypoint.sampling_percent = percent;
    cfg->waypoint.tags.push_back({"team", route::CustomTag::Kind::kLiteral, "payments", ""});
    cfg->waypoint.tags.push_back({"tenant", route::CustomTag::Kind::kHeader, "x-tenant", "none"});
    st.tracing = cfg;
    st.self.name = "waypoint";
    st.self.ns = "demo";
    info.method = "GET";
    info.path = "/x";
    info.authority = "echo";
    info.response_code = 200;
  }
  void Start(uint64_t random = 0) {
    TraceHeaders th;
    for (const auto& [k, v] : in) th.Note(k, v);
    StartTraceWith(st, info, th, [&](std::string_view n) -> std::optional<std::string_view> {
      for (const auto& [k, v] : in) {
        if (k == n) return std::string_view(v);
      }
      return std::nullopt;
    }, random);
  }
  std::map<std::string, std::string> Up() {
    std::map<std::string, std::string> m;
    for (auto& [k, v] : UpstreamTraceHeaders(info.trace)) m[k] = v;
    return m;
  }
};

TEST_CASE("no incoming context: a new trace, sampled by percentage") {
  Req r(100);
  r.Start();
  CHECK(r.info.trace.active);
  CHECK(r.info.trace.sampled);
  CHECK_FALSE(r.info.trace.parent.valid());
  auto up = r.Up();
  CHECK(up.at("traceparent") == telemetry::FormatTraceparent(r.info.trace.trace_id,
                                                             r.info.trace.client, true));
  CHECK_FALSE(up.contains("x-b3-traceid"));  // W3C only unless B3 came in or Zipkin
  auto spans = FinishTrace(r.info);
  REQUIRE(spans.size() == 2);
  CHECK(spans[0].server);
  CHECK_FALSE(spans[0].parent_id.valid());
  CHECK(spans[1].parent_id == spans[0].span_id);
  CHECK(spans[1].span_id == r.info.trace.client);
  CHECK(spans[0].start_ns <= spans[1].start_ns);
  CHECK(spans[1].end_ns <= spans[0].end_ns);
  std::map<std::string, std::string> tags(spans[0].tags.begin(), spans[0].tags.end());
  CHECK(tags.at("team") == "payments");
  CHECK(tags.at("tenant") == "none");
  CHECK(tags.at("http.status_code") == "200");
  CHECK(spans[0].service_name == "waypoint.demo");

  Req zero(0);
  zero.Start(0);
  CHECK(zero.info.trace.active);
  CHECK_FALSE(zero.info.trace.sampled);
  CHECK(zero.Up().at("traceparent").ends_with("-00"));
  CHECK(FinishTrace(zero.info).empty());
  Req half(50);
  half.Start(499'999);
  CHECK(half.info.trace.sampled);
  Req half2(50);
  half2.Start(500'000);
  CHECK_FALSE(half2.info.trace.sampled);
}

TEST_CASE("incoming traceparent and B3: the caller's trace and decision are kept") {
  Req r(0);
  r.in = {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
          {"tracestate", "congo=t61rcWkgMzE"}, {"x-tenant", "acme"}};
  r.Start();
  CHECK(r.info.trace.sampled);  // the caller sampled, 0 % does not override
  CHECK(r.info.trace.trace_id.Hex() == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(r.info.trace.parent.Hex() == "00f067aa0ba902b7");
  auto up = r.Up();
  CHECK(up.at("tracestate") == "congo=t61rcWkgMzE");
  auto spans = FinishTrace(r.info);
  REQUIRE(spans.size() == 2);
  CHECK(spans[0].parent_id.Hex() == "00f067aa0ba902b7");

  Req b(100);
  b.in = {{"x-b3-traceid", "80f198ee56343ba8"}, {"x-b3-spanid", "e457b5a2e4d86bd1"},
          {"x-b3-sampled", "0"}};
  b.Start();
  CHECK_FALSE(b.info.trace.sampled);
  up = b.Up();
  CHECK(up.at("x-b3-traceid") == "80f198ee56343ba8");
  CHECK(up.at("x-b3-spanid") == b.info.trace.client.Hex());
  CHECK(up.at("x-b3-parentspanid") == b.info.trace.server.Hex());
  CHECK(up.at("x-b3-sampled") == "0");

  Req s(100);
  s.in = {{"b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"}};
  s.Start();
  up = s.Up();
  CHECK(up.at("b3") == "80f198ee56343ba8-" + s.info.trace.client.Hex() + "-1-" +
                           s.info.trace.server.Hex());

  Req bad(100);
  bad.in = {{"traceparent", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}};
  bad.Start();
  CHECK(bad.info.trace.trace_id.Hex() != "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK_FALSE(bad.info.trace.parent.valid());

  Req zipkin(100, TracingProvider::Kind::kZipkin);
  zipkin.Start();
  CHECK(zipkin.Up().contains("x-b3-traceid"));  // a Zipkin provider speaks B3
}

TEST_CASE("a retry is a new CLIENT span: headers restamped, every try reported") {
  Req r(100);
  r.in = {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}};
  r.Start();
  ambit::http1::Headers h = {{"host", "echo"}, {"traceparent", "junk"}};
  StampTrace(r.info, h);
  std::string head;
  ambit::http1::AppendRequestHead(head, "GET", "/x", h);
  const auto first = r.info.trace.client;
  StampTraceTry(r.info, 1, head);  // the first try: nothing changes
  CHECK(r.info.trace.client == first);
  StampTraceTry(r.info, 2, head);
  const auto second = r.info.trace.client;
  CHECK_FALSE(second == first);
  CHECK(head.find("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-" + second.Hex() + "-01\r\n") !=
        std::string::npos);
  CHECK(head.find(first.Hex()) == std::string::npos);
  CHECK(head.find("junk") == std::string::npos);
  StampTraceTry(r.info, 2, head);  // the same try again (a stale keep-alive resend)
  CHECK(r.info.trace.client == second);
  auto spans = FinishTrace(r.info);
  REQUIRE(spans.size() == 3);  // earlier try, server, last try
  CHECK_FALSE(spans[0].server);
  CHECK(spans[0].span_id == first);
  CHECK(spans[0].parent_id == r.info.trace.server);
  CHECK(spans[1].server);
  CHECK(spans[2].span_id == second);
  CHECK(spans[0].end_ns <= spans[2].start_ns);

  Req h2(100);
  h2.Start();
  ambit::http2::H2Headers hh = {{":method", "GET"}};
  StampTrace(h2.info, hh);
  StampTraceTry(h2.info, 2, hh);
  size_t n = 0;
  for (const auto& x : hh) n += x.name == "traceparent";
  CHECK(n == 1);
  CHECK(FinishTrace(h2.info).size() == 3);
}

TEST_CASE("span JSON: OTLP ids in hex, kinds, unix-nano strings; Zipkin v2 in µs") {
  SpanRecord s;
  s.trace_id = {0x4bf92f3577b34da6ull, 0xa3ce929d0e0e4736ull};
  s.span_id = {0x00f067aa0ba902b7ull};
  s.parent_id = {0x1111111111111111ull};
  s.server = false;
  s.name = "router c egress";
  s.service_name = "waypoint.demo";
  s.local_ip = "10.0.0.9";
  s.start_ns = 1'700'000'000'000'000'000;
  s.end_ns = s.start_ns + 2'500'000;
  s.error = true;
  s.tags = {{"http.method", "GET"}};
  std::vector<SpanRecord> v{s};
  auto otlp = nlohmann::json::parse(EncodeOtlpJson(v));
  const auto& rs = otlp["resourceSpans"][0];
  CHECK(rs["resource"]["attributes"][0]["value"]["stringValue"] == "waypoint.demo");
  const auto& o = rs["scopeSpans"][0]["spans"][0];
  CHECK(o["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(o["spanId"] == "00f067aa0ba902b7");
  CHECK(o["parentSpanId"] == "1111111111111111");
  CHECK(o["kind"] == 3);
  CHECK(o["startTimeUnixNano"] == "1700000000000000000");
  CHECK(o["status"]["code"] == 2);
  CHECK(o["attributes"][0]["key"] == "http.method");
  auto zip = nlohmann::json::parse(EncodeZipkinJson(v));
  CHECK(zip[0]["id"] == "00f067aa0ba902b7");
  CHECK(zip[0]["parentId"] == "1111111111111111");
  CHECK(zip[0]["kind"] == "CLIENT");
  CHECK(zip[0]["timestamp"] == 1'700'000'000'000'000);
  CHECK(zip[0]["duration"] == 2500);
  CHECK(zip[0]["localEndpoint"]["ipv4"] == "10.0.0.9");
  CHECK(zip[0]["tags"]["http.method"] == "GET");
  s.parent_id = {};
  v = {s};
  CHECK_FALSE(nlohmann::json::parse(EncodeOtlpJson(v))["resourceSpans"][0]["scopeSpans"][0]
                  ["spans"][0].contains("parentSpanId"));
}

// Header values are obs-text, not UTF-8: a user agent of Latin-1 bytes on a
// sampled request used to make the JSON library throw on the exporter thread.
TEST_CASE("span JSON: tags that are not UTF-8 still give valid JSON (U+FFFD), quotes escaped") {
  SpanRecord s;
  s.trace_id = {1, 2};
  s.span_id = {3};
  s.name = "we\"ird";
  s.service_name = "waypoint.demo";
  s.tags = {{"user_agent", "caf\xe9 \xff\x01"}, {"k", "a"}, {"k", "b"}};
  std::vector<SpanRecord> v{s};
  nlohmann::json otlp, zip;
  REQUIRE_NOTHROW(otlp = nlohmann::json::parse(EncodeOtlpJson(v)));
  REQUIRE_NOTHROW(zip = nlohmann::json::parse(EncodeZipkinJson(v)));
  const auto& o = otlp["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  CHECK(o["name"] == "we\"ird");
  CHECK(o["attributes"][0]["value"]["stringValue"] == "caf\xef\xbf\xbd \xef\xbf\xbd\x01");
  CHECK(o["attributes"].size() == 3);
  CHECK(zip[0]["tags"]["user_agent"] == "caf\xef\xbf\xbd \xef\xbf\xbd\x01");
  CHECK(zip[0]["tags"]["k"] == "b");  // a repeated key keeps its last value
}

}  // namespace
}  // namespace ambit::waypoint

namespace ambit::waypoint {
namespace {

TEST_CASE("tools/examples/tracing.yaml compiles: providers, 10 %, three custom tags") {
  auto text = config::ReadConfigFile(AMBIT_SOURCE_ROOT "/tools/examples/tracing.yaml");
  REQUIRE(text.ok());
  World w = Compile(*text);
  CHECK_FALSE(w.Invalid());
  const auto& c = *w.result.config;
  REQUIRE(c.waypoint.provider != nullptr);
  CHECK(c.waypoint.provider->name == "otel");
  CHECK(c.waypoint.sampling_percent == doctest::Approx(10.0));
  CHECK(c.waypoint.tags.size() == 3);
  CHECK(c.providers.contains("zipkin"));
}

}  // namespace
}  // namespace ambit::waypoint

namespace ambit::waypoint {
namespace {

// Not a check: the per-request cost of tracing on the worker at 1 %
// (context, upstream headers, spans for the sampled ones). Run with
// `test_waypoint -tc="tracing cost*" --no-skip`.
TEST_CASE("tracing cost per request at 1 %" * doctest::skip()) {
  auto run = [](Req& r) {
    r.in = {{"host", "echo"}, {"user-agent", "wrk"}, {"content-length", "1024"},
            {"content-type", "application/octet-stream"}, {"accept", "*/*"}};
    constexpr int kN = 200000;
    size_t spans = 0;
    uint64_t rnd = 88172645463325252ull;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN; ++i) {
      rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
      r.info.trace = {};
      r.Start(rnd);
      ambit::http1::Headers h;
      for (const auto& [k, v] : r.in) h.push_back({k, v});
      StampTrace(r.info, h);
      spans += FinishTrace(r.info).size();
    }
    const double ns = std::chrono::duration<double, std::nano>(
                          std::chrono::steady_clock::now() - t0).count() / kN;
    MESSAGE(ns << " ns per request (" << spans << " spans of " << kN << " requests)");
    return ns;
  };
  Req on(1);
  Req off(1);
  off.st.tracing = std::make_shared<route::TracingConfig>();  // no provider: tracing off
  for (int round = 0; round < 3; ++round) {
    const double a = run(off), b = run(on);
    MESSAGE("round " << round << ": tracing at 1 % adds " << (b - a) << " ns per request");
  }
}

}  // namespace
}  // namespace ambit::waypoint
