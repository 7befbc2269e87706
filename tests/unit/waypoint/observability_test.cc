// MeshConfig access-log fields and Telemetry accessLogging / metrics →
// route::ObservabilityConfig (compile_observability.cc,
// compile_metrics_overrides.cc): providers, binding levels, per-provider
// merge, filters, metrics overrides and the findings for what is not applied.
#include <doctest/doctest.h>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"
#include "waypoint/route/observability.h"

namespace ambit::waypoint::route {
namespace {

constexpr std::string_view kWorld = R"(workloads:
- {uid: c//Pod/demo/waypoint, name: waypoint, namespace: demo, workloadIps: [10.0.0.9],
   labels: {"gateway.networking.k8s.io/gateway-name": waypoint, role: wp}}
- {uid: c//Pod/demo/echo, name: echo, namespace: demo, workloadIps: [10.0.0.1],
   services: {"demo/echo.demo.svc.cluster.local": {80: 8080}}}
services:
- {name: echo, namespace: demo, hostname: echo.demo.svc.cluster.local, vips: [/10.96.0.1],
   ports: {80: 8080}}
)";

constexpr std::string_view kMesh = R"(apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    accessLogFile: /tmp/mesh.log
    accessLogEncoding: JSON
    extensionProviders:
    - name: text-file
      envoyFileAccessLog:
        path: /tmp/text.log
        logFormat:
          text: "%REQ(:METHOD)% %RESPONSE_CODE% %BOGUS%"
    - name: json-file
      envoyFileAccessLog:
        path: /tmp/json.log
        logFormat:
          labels:
            user: "%REQ(X-USER)%"
            code: "%RESPONSE_CODE%"
    - name: otel-als
      envoyOtelAls: {service: x, port: 1}
)";

struct World {
  std::shared_ptr<const mesh::Snapshot> snap;
  ObservabilityCompileResult result;
  const ObservabilityConfig& c() const { return *result.config; }
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

World Compile(std::string_view mesh, const std::string& docs) {
  std::string text = std::string(kWorld);
  if (!mesh.empty()) text += "---\n" + std::string(mesh);
  if (!docs.empty()) text += "---\n" + docs;
  auto cfg = config::ParseLocalConfig(text, "obs.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  mesh::WorkloadStore store;
  REQUIRE(mesh::ApplyLocalConfig(*cfg, &store).ok());
  World w;
  w.snap = store.Build();
  const mesh::Workload* self = w.snap->FindWorkload("c//Pod/demo/waypoint");
  REQUIRE(self != nullptr);
  w.result = CompileObservability(cfg->resources, *w.snap, *self);
  return w;
}

std::vector<std::string> Providers(const AccessLogPolicy& p) {
  std::vector<std::string> out;
  for (const auto& s : p.sinks) out.push_back(s.provider->name);
  return out;
}

TEST_CASE("observability: nothing configured keeps the waypoint's own line") {
  World w = Compile("", "");
  CHECK_FALSE(w.c().waypoint_log.configured);
  CHECK_FALSE(w.c().waypoint_metrics.Customized());
  REQUIRE(w.c().providers.contains("envoy"));  // built in, TEXT, /dev/stdout
  CHECK(w.c().providers.at("envoy")->path == "/dev/stdout");
  CHECK_FALSE(w.c().providers.at("envoy")->format.json);
  CHECK(w.result.findings.empty());
}

TEST_CASE("observability: MeshConfig accessLogFile + JSON, file providers, findings") {
  World w = Compile(kMesh, "");
  const auto& c = w.c();
  CHECK(c.waypoint_log.configured);
  CHECK(Providers(c.waypoint_log) == std::vector<std::string>{"envoy"});
  const auto& envoy = *c.providers.at("envoy");
  CHECK(envoy.path == "/tmp/mesh.log");
  CHECK(envoy.format.json);
  CHECK(envoy.format.labels.size() == 24);  // Istio's default JSON labels
  const auto& text = *c.providers.at("text-file");
  CHECK_FALSE(text.format.json);
  CHECK(text.format.text.segments.back().text == "\n");  // Istio appends the newline
  const auto& json = *c.providers.at("json-file");
  CHECK(json.format.json);
  REQUIRE(json.format.labels.size() == 2);
  CHECK(json.format.labels[0].first == "user");  // in the order written
  CHECK(json.format.labels[1].first == "code");
  CHECK_FALSE(c.providers.contains("otel-als"));
  const std::string f = w.Findings();
  CHECK(f.find("command operator %BOGUS% is not supported") != std::string::npos);
  CHECK(f.find("envoyOtelAls access logging is not supported") != std::string::npos);
  CHECK_FALSE(w.Invalid());
  CHECK(World(Compile(R"(apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    accessLogEncoding: XML
)", "")).Invalid());
}

TEST_CASE("observability: Telemetry levels merge per provider; filters; disabled") {
  World w = Compile(kMesh, R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: text-file}]
    filter: {expression: "response.code >= 400"}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ns, namespace: demo}
spec:
  accessLogging:
  - providers: [{name: envoy}]
    disabled: true
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: echo-logs, namespace: demo}
spec:
  targetRefs:
  - {kind: Service, group: "", name: echo}
  accessLogging:
  - providers: [{name: json-file}]
  - providers: [{name: text-file}]
    disabled: true
  - match: {mode: CLIENT}
    providers: [{name: envoy}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: other-ns, namespace: elsewhere}
spec:
  accessLogging:
  - providers: [{name: json-file}]
)");
  const auto& c = w.c();
  // Waypoint: mesh-wide text-file (filtered) + the namespace disables envoy.
  CHECK(Providers(c.waypoint_log) == std::vector<std::string>{"text-file"});
  REQUIRE(c.waypoint_log.sinks[0].filter != nullptr);
  CHECK(c.waypoint_log.sinks[0].filter->text() == "response.code >= 400");
  CHECK(c.waypoint_log.sources ==
        std::vector<std::string>{"meshConfig.accessLogFile", "Telemetry istio-system/mesh-default",
                                 "Telemetry demo/ns"});
  // The echo service: json-file on, text-file off; the CLIENT entry skipped.
  const auto& echo = c.LogFor("demo/echo.demo.svc.cluster.local");
  CHECK(Providers(echo) == std::vector<std::string>{"json-file"});
  CHECK(w.Findings().find("match.mode: CLIENT") != std::string::npos);
  CHECK(c.request_headers == std::vector<std::string>{"x-user"});
}

TEST_CASE("observability: targetRefs Gateway and selector bind to this waypoint only") {
  World w = Compile("", R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: gw, namespace: demo}
spec:
  targetRefs:
  - {kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}
  accessLogging:
  - filter: {expression: "request.headers['x-debug'] == '1'"}
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: other-gw, namespace: demo}
spec:
  targetRefs:
  - {kind: Gateway, group: gateway.networking.k8s.io, name: another}
  accessLogging:
  - disabled: true
)");
  const auto& c = w.c();
  CHECK(Providers(c.waypoint_log) == std::vector<std::string>{"envoy"});  // default provider
  CHECK(c.waypoint_log.sinks[0].filter != nullptr);
  CHECK(c.request_headers ==
        std::vector<std::string>{"x-envoy-original-path", "x-forwarded-for", "x-debug"});

  World sel = Compile("", R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: sel, namespace: demo}
spec:
  selector: {matchLabels: {role: other}}
  accessLogging:
  - {}
)");
  CHECK_FALSE(sel.c().waypoint_log.configured);
}

TEST_CASE("observability: a filter outside the CEL subset is reported, entry not applied") {
  World w = Compile("", R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh, namespace: istio-system}
spec:
  accessLogging:
  - filter: {expression: "size(request.path) > 10"}
)");
  CHECK(w.Findings().find("filter.expression 'size(request.path) > 10'") != std::string::npos);
  CHECK(w.c().waypoint_log.sinks.empty());
  CHECK_FALSE(w.Invalid());
}

TEST_CASE("observability: metrics overrides (disabled, REMOVE, UPSERT) and their findings") {
  World w = Compile("", R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh, namespace: istio-system}
spec:
  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: REQUEST_COUNT, mode: CLIENT_AND_SERVER}
      disabled: true
    - match: {metric: ALL_METRICS}
      tagOverrides:
        request_protocol: {operation: REMOVE}
        destination_service_name: {value: "request.host"}
        my_new_label: {value: "request.method"}
    - match: {metric: REQUEST_SIZE, mode: CLIENT}
      disabled: true
    - match: {customMetric: my_metric}
      disabled: true
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: echo, namespace: demo}
spec:
  targetRefs:
  - {kind: Service, group: "", name: echo}
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      disabled: false
      tagOverrides:
        destination_service_name: {operation: UPSERT, value: "request.headers['x-user']"}
)");
  const auto& m = w.c().waypoint_metrics;
  CHECK(m.Disabled(Metric::kRequestCount));
  CHECK_FALSE(m.Disabled(Metric::kRequestSize));  // mode CLIENT does not apply
  REQUIRE(m.Tags(Metric::kRequestDuration).size() == 2);
  CHECK(m.Tags(Metric::kRequestDuration)[0].tag == "request_protocol");
  CHECK(m.Tags(Metric::kRequestDuration)[0].remove);
  CHECK(m.Tags(Metric::kRequestDuration)[1].value->text() == "request.host");
  const auto& echo = w.c().MetricsFor("demo/echo.demo.svc.cluster.local");
  CHECK_FALSE(echo.Disabled(Metric::kRequestCount));
  REQUIRE(echo.Tags(Metric::kRequestCount).size() == 2);
  CHECK(echo.Tags(Metric::kRequestCount)[1].value->text() == "request.headers['x-user']");
  CHECK(w.c().request_headers == std::vector<std::string>{"x-user"});
  const std::string f = w.Findings();
  CHECK(f.find("tagOverrides.my_new_label: only Istio's standard labels") != std::string::npos);
  CHECK(f.find("match.mode: CLIENT") != std::string::npos);
  CHECK(f.find("customMetric") != std::string::npos);
  CHECK_FALSE(w.Invalid());

  World bad = Compile("", R"(apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh, namespace: istio-system}
spec:
  metrics:
  - overrides:
    - match: {metric: REQUESTS}
      disabled: true
)");
  CHECK(bad.Invalid());
}

}  // namespace
}  // namespace ambit::waypoint::route
