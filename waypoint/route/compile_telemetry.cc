// Telemetry (telemetry.istio.io/v1) tracing and the MeshConfig providers it
// names → TracingConfig. Binding as istiod does for a waypoint: a Telemetry
// without selector/targetRefs in the root namespace is mesh-wide, in the
// waypoint's namespace namespace-wide; `selector` (the waypoint's labels) or
// `targetRefs` to the waypoint's Gateway bind it to this waypoint; targetRefs
// to a Service apply to that service's requests. Levels merge in that order
// (later fields win, customTags merge by tag). accessLogging and metrics are
// compile_observability.cc's (the binding is telemetry_binding.cc's).
#include <fmt/format.h>

#include <cstdlib>

#include "common/base/ascii.h"
#include "waypoint/route/compile_util.h"
#include "waypoint/route/telemetry_binding.h"
#include "waypoint/route/tracing_policy.h"

namespace ambit::waypoint::route {

namespace {

using internal::Child;
using internal::Doc;
using internal::Field;
using internal::Present;
using internal::Sink;

// One tracing entry's settings; unset fields do not override on merge.
struct TracingOverlay {
  std::optional<std::string> provider;
  std::optional<double> sampling;
  std::optional<bool> disable_reporting;
  std::vector<CustomTag> tags;
  std::string source;
};

// `at` is where a finding points (the value itself, or for MeshConfig the
// data.mesh string: lines inside it are not the file's).
std::optional<double> Percent(const Doc& doc, const YAML::Node& at, const YAML::Node& n,
                              std::string_view field, Sink& sink) {
  if (!n.IsScalar()) {
    sink.Invalid(doc, at, fmt::format("{}: expected a number", field));
    return std::nullopt;
  }
  char* end = nullptr;
  const std::string& s = n.Scalar();
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !(v >= 0.0 && v <= 100.0)) {
    sink.Invalid(doc, at, fmt::format("{}: '{}' is not a percentage in 0..100", field, s));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Bool(const Doc& doc, const YAML::Node& at, const YAML::Node& n,
                         std::string_view field, Sink& sink) {
  if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
    return n.Scalar() == "true";
  }
  sink.Invalid(doc, at, fmt::format("{}: expected true or false", field));
  return std::nullopt;
}

std::string Str(const YAML::Node& n) { return n.IsDefined() && n.IsScalar() ? n.Scalar() : ""; }

// service (IP literal, or a mesh hostname → one of its endpoints, since the
// waypoint dials the collector directly without capture) + port.
void Resolve(const mesh::Snapshot& snap, TracingProvider& p) {
  if (auto ip = net::IpAddress::Parse(p.service); ip.ok()) {
    p.address = net::SocketAddress(*ip, p.port).ToString();
    p.resolved_from = "ip literal";
    return;
  }
  const mesh::Service* svc = snap.FindServiceByHostname(p.service, "");
  if (svc == nullptr) {
    p.resolved_from = fmt::format("no service {} in the mesh model; spans are dropped", p.service);
    return;
  }
  uint16_t target = p.port;
  if (auto it = svc->ports.find(p.port); it != svc->ports.end() && it->second != 0) {
    target = it->second;
  }
  for (const auto& [uid, ep] : svc->endpoints) {
    const mesh::Workload* w = snap.FindWorkload(uid);
    if (w == nullptr || w->addresses.empty() || ep.status != mesh::WorkloadStatus::kHealthy) {
      continue;
    }
    uint16_t port = target;
    if (auto it = ep.ports.find(p.port); it != ep.ports.end() && it->second != 0) {
      port = it->second;
    }
    p.address = net::SocketAddress(w->addresses.front(), port).ToString();
    p.resolved_from = fmt::format("endpoint {}/{} of {}", w->ns, w->name, svc->Key());
    return;
  }
  if (!svc->vips.empty()) {
    p.address = net::SocketAddress(svc->vips.front().ip, p.port).ToString();
    p.resolved_from = fmt::format("VIP of {} (no healthy endpoint)", svc->Key());
    return;
  }
  p.resolved_from = fmt::format("{} has no endpoint or VIP; spans are dropped", svc->Key());
}

class Compiler {
 public:
  Compiler(std::span<const config::ResourceConfig> resources, const mesh::Snapshot& snap,
           const mesh::Workload& self, TracingConfig* out, Sink& sink)
      : resources_(resources), snap_(snap), self_(self), out_(out), sink_(sink) {}

  void Run() {
    for (const auto& rc : resources_) {
      if (rc.kind == "ConfigMap") MeshConfig(rc);
    }
    std::optional<TracingOverlay> mesh, ns, workload;
    std::map<std::string, TracingOverlay> services;
    for (const auto& rc : resources_) {
      if (rc.kind != "Telemetry") continue;
      auto doc = internal::LoadDoc(rc, sink_);
      if (doc) Telemetry(*doc, mesh, ns, workload, services);
    }
    TracingPolicy base;
    base.sampling_percent = default_sampling_;
    if (out_->enable_tracing && !out_->default_providers.empty()) {
      base.provider = FindProvider(out_->default_providers.front());
    }
    for (const auto* o : {&mesh, &ns, &workload}) {
      if (*o) Merge(base, **o);
    }
    out_->waypoint = base;
    for (const auto& [key, o] : services) {
      TracingPolicy p = base;
      Merge(p, o);
      out_->by_service[key] = std::move(p);
    }
  }

 private:
  std::shared_ptr<const TracingProvider> FindProvider(const std::string& name) const {
    auto it = out_->providers.find(name);
    return it != out_->providers.end() ? it->second : nullptr;
  }

  void Merge(TracingPolicy& p, const TracingOverlay& o) const {
    if (o.provider) p.provider = FindProvider(*o.provider);
    if (o.sampling) p.sampling_percent = *o.sampling;
    if (o.disable_reporting) p.disable_span_reporting = *o.disable_reporting;
    for (const CustomTag& t : o.tags) {
      std::erase_if(p.tags, [&](const CustomTag& x) { return x.tag == t.tag; });
      p.tags.push_back(t);
    }
    p.sources.push_back(o.source);
  }

  // istio-system/istio: data.mesh is MeshConfig YAML. Only the tracing keys
  // are read (listed in /config_dump); the rest is not this component's.
  void MeshConfig(const config::ResourceConfig& rc) {
    Doc doc{.config = &rc, .kind = rc.kind, .ns = rc.ns, .name = rc.name};
    out_->mesh_config_source = fmt::format("{}:{}", rc.file, rc.line);
    const YAML::Node text = Child(Child(rc.node, "data"), "mesh");
    if (!Present(text)) return;
    if (!text.IsScalar()) {
      sink_.Invalid(doc, text, "data.mesh: expected the MeshConfig YAML as a string");
      return;
    }
    YAML::Node mesh;
    try {
      mesh = YAML::Load(text.Scalar());
    } catch (const YAML::Exception& e) {
      sink_.Invalid(doc, text, fmt::format("data.mesh: not YAML: {}", e.what()));
      return;
    }
    if (!mesh.IsMap()) return;
    auto read = [&](std::string_view key) {
      YAML::Node n = Child(mesh, key);
      if (n.IsDefined()) out_->mesh_fields_read.push_back(std::string(key));
      return n;
    };
    if (YAML::Node n = read("rootNamespace"); n.IsScalar()) root_ns_ = n.Scalar();
    // The mesh-wide default for DestinationRule h2UpgradePolicy is not
    // applied by the waypoint (a DestinationRule's own field is).
    if (YAML::Node n = Child(mesh, "h2UpgradePolicy"); Present(n)) {
      sink_.Add(doc, text,
                fmt::format("data.mesh.h2UpgradePolicy: '{}' is not applied by the waypoint; "
                            "set connectionPool.http.h2UpgradePolicy in a DestinationRule",
                            n.IsScalar() ? n.Scalar() : ""));
    }
    if (YAML::Node n = read("enableTracing"); Present(n)) {
      if (auto b = Bool(doc, text, n, "data.mesh.enableTracing", sink_)) out_->enable_tracing = *b;
    }
    const YAML::Node dc_sampling = Child(Child(Child(mesh, "defaultConfig"), "tracing"), "sampling");
    if (Present(dc_sampling)) {
      out_->mesh_fields_read.push_back("defaultConfig.tracing.sampling");
      if (auto v = Percent(doc, text, dc_sampling, "data.mesh.defaultConfig.tracing.sampling",
                           sink_)) {
        default_sampling_ = *v;
      }
    }
    if (YAML::Node dp = Child(Child(mesh, "defaultProviders"), "tracing"); Present(dp)) {
      out_->mesh_fields_read.push_back("defaultProviders.tracing");
      if (dp.IsSequence()) {
        for (const auto& x : dp) out_->default_providers.push_back(Str(x));
      }
    }
    const YAML::Node providers = read("extensionProviders");
    if (!providers.IsDefined() || !providers.IsSequence()) return;
    for (size_t i = 0; i < providers.size(); ++i) Provider(doc, text, providers[i], i);
  }

  void Provider(const Doc& doc, const YAML::Node& at, const YAML::Node& n, size_t i) {
    const std::string field = Field("data.mesh.extensionProviders", i);
    TracingProvider p;
    p.name = Str(Child(n, "name"));
    // (No YAML::Node reassignment: yaml-cpp's operator= writes through.)
    const YAML::Node otel = Child(n, "opentelemetry"), zipkin = Child(n, "zipkin");
    const YAML::Node body = Present(otel) ? otel : zipkin;
    if (Present(otel)) {
      p.kind = TracingProvider::Kind::kOpenTelemetry;
      const YAML::Node http = Child(body, "http");
      if (!Present(http)) {
        sink_.Add(doc, at, fmt::format("{} ({}): OTLP over gRPC is not supported (set http: "
                                       "{{path: /v1/traces}}); provider not usable", field, p.name));
        return;
      }
      p.path = Str(Child(http, "path"));
      if (p.path.empty()) p.path = "/v1/traces";
      for (std::string_view k : {"timeout", "headers"}) {
        if (Child(http, k).IsDefined()) {
          sink_.Add(doc, at, fmt::format("{}.opentelemetry.http.{}: not supported; ignored", field, k));
        }
      }
      for (std::string_view k : {"resourceDetectors", "dynatraceSampler", "grpc"}) {
        if (Child(body, k).IsDefined()) {
          sink_.Add(doc, at, fmt::format("{}.opentelemetry.{}: not supported; ignored", field, k));
        }
      }
    } else if (Present(zipkin)) {
      p.kind = TracingProvider::Kind::kZipkin;
      p.path = Str(Child(body, "path"));
      if (p.path.empty()) p.path = "/api/v2/spans";
      for (std::string_view k : {"maxTagLength", "enable64bitTraceId", "headers", "timeout"}) {
        if (Child(body, k).IsDefined()) {
          sink_.Add(doc, at, fmt::format("{}.zipkin.{}: not supported; ignored", field, k));
        }
      }
    } else {
      for (std::string_view k : {"datadog", "lightstep", "skywalking", "stackdriver"}) {
        if (Present(Child(n, k))) {
          sink_.Add(doc, at, fmt::format("{} ({}): {} tracing is not supported; provider not "
                                         "usable", field, p.name, k));
        }
      }
      return;  // not a tracing provider (access log, ext_authz, ...)
    }
    p.service = Str(Child(body, "service"));
    const std::string port = Str(Child(body, "port"));
    char* end = nullptr;
    const long v = std::strtol(port.c_str(), &end, 10);
    if (p.name.empty() || p.service.empty() || port.empty() || end != port.c_str() + port.size() ||
        v < 1 || v > 65535) {
      sink_.Invalid(doc, at, fmt::format("{}: a tracing provider needs name, service and a port "
                                         "in 1..65535", field));
      return;
    }
    p.port = static_cast<uint16_t>(v);
    if (!p.path.starts_with('/')) p.path.insert(0, "/");
    Resolve(snap_, p);
    if (p.address.empty()) sink_.Add(doc, at, fmt::format("{} ({}): {}", field, p.name, p.resolved_from));
    const std::string name = p.name;  // (the right side of = is evaluated first)
    out_->providers[name] = std::make_shared<const TracingProvider>(std::move(p));
  }

  void Telemetry(const Doc& doc, std::optional<TracingOverlay>& mesh,
                 std::optional<TracingOverlay>& ns, std::optional<TracingOverlay>& workload,
                 std::map<std::string, TracingOverlay>& services) {
    internal::ReportUnknownKeys(doc, doc.spec, "spec",
                                {"selector", "targetRef", "targetRefs", "tracing",
                                 "accessLogging", "metrics"},
                                sink_, "not supported by the waypoint yet; ignored");
    const internal::TelemetryBinding b =
        internal::BindTelemetry(doc, snap_, self_, root_ns_, &sink_);
    std::vector<std::optional<TracingOverlay>*> levels;
    if (b.mesh) levels.push_back(&mesh);
    if (b.ns) levels.push_back(&ns);
    if (b.workload) levels.push_back(&workload);
    const std::vector<std::string>& service_keys = b.services;
    std::optional<TracingOverlay> overlay = Tracing(doc);
    if (!overlay) return;
    for (auto* level : levels) {
      if (*level) {
        sink_.Add(doc, fmt::format("conflicts with {} at the same level; ignored as istiod "
                                   "keeps the oldest", (*level)->source));
        continue;
      }
      *level = *overlay;
    }
    for (const auto& key : service_keys) {
      if (!services.emplace(key, *overlay).second) {
        sink_.Add(doc, fmt::format("a second Telemetry for service {}; ignored", key));
      }
    }
  }

  std::optional<TracingOverlay> Tracing(const Doc& doc) {
    const YAML::Node list = Child(doc.spec, "tracing");
    if (!Present(list)) return std::nullopt;
    if (!list.IsSequence()) {
      sink_.Invalid(doc, list, "spec.tracing: expected a list");
      return std::nullopt;
    }
    TracingOverlay o;
    o.source = "Telemetry " + doc.Key();
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node t = list[i];
      const std::string f = Field("spec.tracing", i);
      internal::ReportUnknownKeys(doc, t, f,
                                  {"providers", "randomSamplingPercentage", "customTags",
                                   "disableSpanReporting", "match"},
                                  sink_);
      if (YAML::Node m = Child(Child(t, "match"), "mode"); Present(m) && Str(m) != "CLIENT_AND_SERVER") {
        sink_.Add(doc, m, fmt::format("{}.match.mode: {} applied to both span kinds of the "
                                      "waypoint hop", f, Str(m)));
      }
      if (YAML::Node p = Child(t, "providers"); p.IsSequence() && p.size() > 0) {
        const std::string name = Str(Child(p[0], "name"));
        if (out_->providers.contains(name)) {
          o.provider = name;
        } else {
          sink_.Add(doc, p[0], fmt::format("{}.providers[0]: no tracing provider '{}' in the "
                                           "mesh config; tracing off", f, name));
          o.provider = name;  // resolves to none: Istio disables tracing too
        }
        if (p.size() > 1) {
          sink_.Add(doc, p[1], fmt::format("{}.providers: only one tracing provider is used "
                                           "(as istiod); the rest ignored", f));
        }
      }
      if (YAML::Node s = Child(t, "randomSamplingPercentage"); Present(s)) {
        o.sampling = Percent(doc, s, s, Field(f, "randomSamplingPercentage"), sink_);
      }
      if (YAML::Node d = Child(t, "disableSpanReporting"); Present(d)) {
        o.disable_reporting = Bool(doc, d, d, Field(f, "disableSpanReporting"), sink_);
      }
      if (YAML::Node tags = Child(t, "customTags"); tags.IsMap()) {
        for (const auto& kv : tags) Tag(doc, f, Str(kv.first), kv.second, o);
      }
    }
    return o;
  }

  void Tag(const Doc& doc, const std::string& f, const std::string& name, const YAML::Node& n,
           TracingOverlay& o) {
    CustomTag t;
    t.tag = name;
    if (YAML::Node lit = Child(n, "literal"); Present(lit)) {
      t.value = Str(Child(lit, "value"));
    } else if (YAML::Node h = Child(n, "header"); Present(h)) {
      t.kind = CustomTag::Kind::kHeader;
      t.value = base::ToLower(Str(Child(h, "name")));
      t.default_value = Str(Child(h, "defaultValue"));
    } else if (YAML::Node e = Child(n, "environment"); Present(e)) {
      // The waypoint's own environment, read once per config change.
      const char* v = std::getenv(Str(Child(e, "name")).c_str());
      t.value = v != nullptr ? v : Str(Child(e, "defaultValue"));
    } else {
      sink_.Add(doc, n, fmt::format("{}.customTags.{}: needs literal, header or environment; "
                                    "ignored", f, name));
      return;
    }
    if (name.empty() || (t.kind == CustomTag::Kind::kHeader && t.value.empty())) {
      sink_.Add(doc, n, fmt::format("{}.customTags.{}: empty name; ignored", f, name));
      return;
    }
    o.tags.push_back(std::move(t));
  }

  std::span<const config::ResourceConfig> resources_;
  const mesh::Snapshot& snap_;
  const mesh::Workload& self_;
  TracingConfig* out_;
  Sink& sink_;
  std::string root_ns_ = "istio-system";
  double default_sampling_ = 1.0;
};

}  // namespace

TelemetryCompileResult CompileTelemetry(std::span<const config::ResourceConfig> resources,
                                        const mesh::Snapshot& snapshot,
                                        const mesh::Workload& self) {
  auto cfg = std::make_shared<TracingConfig>();
  TelemetryCompileResult result;
  Sink sink(&result.findings);
  Compiler c(resources, snapshot, self, cfg.get(), sink);
  c.Run();
  result.config = std::move(cfg);
  return result;
}

}  // namespace ambit::waypoint::route
