// MeshConfig access-log settings and Telemetry accessLogging → the
// AccessLogPolicy of the waypoint and of services with their own Telemetry
// (metrics overrides: compile_metrics_overrides.cc). Merge as istiod does:
// MeshConfig accessLogFile turns the built-in "envoy" provider on; then
// mesh-wide, namespace, waypoint and (for a service's requests) Service
// Telemetry levels each set, per provider named (default providers when an
// entry names none), whether it logs and with which filter.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "waypoint/route/compile_observability_internal.h"
#include "waypoint/route/telemetry_binding.h"

namespace ambit::waypoint::route {

std::string_view MetricName(Metric m) {
  static constexpr std::array<std::string_view, static_cast<size_t>(Metric::kCount)> kNames = {
      "REQUEST_COUNT", "REQUEST_DURATION", "REQUEST_SIZE", "RESPONSE_SIZE",
      "TCP_OPENED_CONNECTIONS", "TCP_CLOSED_CONNECTIONS", "TCP_SENT_BYTES",
      "TCP_RECEIVED_BYTES"};
  return kNames[static_cast<size_t>(m)];
}

namespace internal {

namespace {

std::string Str(const YAML::Node& n) { return n.IsDefined() && n.IsScalar() ? n.Scalar() : ""; }

// A JSON format from labels: string values are formats, others kept as JSON.
AccessLogFormat JsonFromLabels(const nlohmann::ordered_json& labels, std::vector<std::string>* unknown) {
  AccessLogFormat f;
  f.json = true;
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (it->is_string()) {
      f.labels.emplace_back(it.key(), ParseLogFormat(it->get<std::string>(), unknown));
    } else {
      f.raw_labels.emplace_back(it.key(), it->dump());
    }
  }
  return f;
}

nlohmann::ordered_json YamlToJson(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::ordered_json o = nlohmann::ordered_json::object();
    for (const auto& kv : n) o[Str(kv.first)] = YamlToJson(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const auto& x : n) a.push_back(YamlToJson(x));
    return a;
  }
  if (!n.IsScalar()) return nullptr;
  const std::string& s = n.Scalar();
  if (n.Tag() != "!") {  // unquoted: numbers and bools keep their type
    if (s == "true" || s == "false") return s == "true";
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end == s.c_str() + s.size()) return v;
  }
  return s;
}

}  // namespace

void ObservabilityCompiler::Run() {
  for (const auto& rc : resources_) {
    if (rc.kind == "ConfigMap") MeshConfig(rc);
  }
  // The built-in "envoy" provider: MeshConfig's path and format.
  auto envoy = std::make_shared<AccessLogProvider>();
  envoy->name = "envoy";
  envoy->path = out_->access_log_file.empty() ? "/dev/stdout" : out_->access_log_file;
  envoy->format = mesh_format_;
  if (!out_->providers.contains("envoy")) out_->providers["envoy"] = envoy;
  if (out_->default_providers.empty()) out_->default_providers.push_back("envoy");

  LogLevels levels;
  MetricLevels mlevels;
  for (const auto& rc : resources_) {
    if (rc.kind != "Telemetry") continue;
    auto doc = LoadDoc(rc, sink_);
    if (!doc) continue;
    const TelemetryBinding b = BindTelemetry(*doc, snap_, self_, root_ns_, nullptr);
    if (!b.mesh && !b.ns && !b.workload && b.services.empty()) continue;
    if (auto o = AccessLogging(*doc)) Place(*doc, b, *o, levels.mesh, levels.ns, levels.workload,
                                            levels.services);
    if (auto o = Metrics(*doc)) Place(*doc, b, *o, mlevels.mesh, mlevels.ns, mlevels.workload,
                                      mlevels.services);
  }
  // Base: MeshConfig accessLogFile set → "envoy" logs every request.
  LogOverlay base;
  if (!out_->access_log_file.empty()) {
    base.per_provider["envoy"] = {false, nullptr};
    base.source = "meshConfig.accessLogFile";
  }
  std::vector<const LogOverlay*> chain = {&base};
  for (const auto* o : {&levels.mesh, &levels.ns, &levels.workload}) {
    if (*o) chain.push_back(&**o);
  }
  out_->waypoint_log = Effective(chain);
  for (const auto& [key, o] : levels.services) {
    std::vector<const LogOverlay*> c = chain;
    c.push_back(&o);
    out_->log_by_service[key] = Effective(c);
  }
  std::vector<const MetricsOverlay*> mchain;
  for (const auto* o : {&mlevels.mesh, &mlevels.ns, &mlevels.workload}) {
    if (*o) mchain.push_back(&**o);
  }
  out_->waypoint_metrics = EffectiveMetrics(mchain);
  for (const auto& [key, o] : mlevels.services) {
    std::vector<const MetricsOverlay*> c = mchain;
    c.push_back(&o);
    out_->metrics_by_service[key] = EffectiveMetrics(c);
  }
  CollectAllHeaders();
}

void ObservabilityCompiler::MeshConfig(const config::ResourceConfig& rc) {
  Doc doc{.config = &rc, .kind = rc.kind, .ns = rc.ns, .name = rc.name};
  const YAML::Node text = Child(Child(rc.node, "data"), "mesh");
  if (!Present(text) || !text.IsScalar()) return;  // compile_telemetry.cc reports it
  YAML::Node mesh;
  try {
    mesh = YAML::Load(text.Scalar());
  } catch (const YAML::Exception&) {
    return;
  }
  if (!mesh.IsMap()) return;
  if (YAML::Node n = Child(mesh, "rootNamespace"); n.IsScalar()) root_ns_ = n.Scalar();
  out_->access_log_file = Str(Child(mesh, "accessLogFile"));
  if (YAML::Node e = Child(mesh, "accessLogEncoding"); Present(e)) {
    const std::string v = Str(e);
    if (v != "TEXT" && v != "JSON") {
      sink_.Invalid(doc, text, fmt::format("data.mesh.accessLogEncoding: '{}' is not TEXT or JSON",
                                           v));
    } else {
      out_->access_log_encoding = v;
    }
  }
  out_->access_log_format = Str(Child(mesh, "accessLogFormat"));
  std::vector<std::string> unknown;
  if (out_->access_log_encoding == "JSON") {
    mesh_format_ = DefaultJsonFormat();
    if (!out_->access_log_format.empty()) {
      auto j = nlohmann::ordered_json::parse(out_->access_log_format, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        // istiod logs the error and keeps the default labels.
        sink_.Add(doc, text, "data.mesh.accessLogFormat: not a JSON object (with "
                             "accessLogEncoding JSON); Istio's default JSON labels are used");
      } else {
        mesh_format_ = JsonFromLabels(j, &unknown);
        mesh_format_.source = "meshConfig.accessLogFormat (JSON)";
      }
    }
  } else {
    mesh_format_ = DefaultTextFormat();
    if (!out_->access_log_format.empty()) {
      std::string f = out_->access_log_format;
      if (!f.ends_with('\n')) f.push_back('\n');  // Istio appends the newline
      mesh_format_.text = ParseLogFormat(f, &unknown);
      mesh_format_.source = "meshConfig.accessLogFormat (TEXT)";
    }
  }
  ReportUnknown(doc, text, "data.mesh.accessLogFormat", unknown);
  if (YAML::Node dp = Child(Child(mesh, "defaultProviders"), "accessLogging"); dp.IsSequence()) {
    for (const auto& x : dp) out_->default_providers.push_back(Str(x));
  }
  if (YAML::Node dp = Child(Child(mesh, "defaultProviders"), "metrics"); dp.IsSequence()) {
    for (const auto& x : dp) {
      if (Str(x) != "prometheus") {
        sink_.Add(doc, text, fmt::format("data.mesh.defaultProviders.metrics: '{}' is not "
                                         "supported (only prometheus); ignored", Str(x)));
      }
    }
  }
  const YAML::Node providers = Child(mesh, "extensionProviders");
  if (!providers.IsSequence()) return;
  for (size_t i = 0; i < providers.size(); ++i) Provider(doc, text, providers[i], i);
}

void ObservabilityCompiler::Provider(const Doc& doc, const YAML::Node& at, const YAML::Node& n,
                                     size_t i) {
  const std::string field = Field("data.mesh.extensionProviders", i);
  const std::string name = Str(Child(n, "name"));
  for (std::string_view k : {"envoyHttpAls", "envoyTcpAls", "envoyOtelAls"}) {
    if (Present(Child(n, k))) {
      sink_.Add(doc, at, fmt::format("{} ({}): {} access logging is not supported; provider "
                                     "not usable", field, name, k));
    }
  }
  const YAML::Node file = Child(n, "envoyFileAccessLog");
  if (!Present(file)) return;
  if (name.empty()) {
    sink_.Invalid(doc, at, fmt::format("{}: an access-log provider needs a name", field));
    return;
  }
  auto p = std::make_shared<AccessLogProvider>();
  p->name = name;
  p->path = Str(Child(file, "path"));
  if (p->path.empty()) p->path = "/dev/stdout";
  p->format = DefaultTextFormat();
  const YAML::Node lf = Child(file, "logFormat");
  std::vector<std::string> unknown;
  if (YAML::Node t = Child(lf, "text"); Present(t)) {
    std::string f = Str(t);
    if (!f.ends_with('\n')) f.push_back('\n');
    p->format.text = ParseLogFormat(f, &unknown);
    p->format.source = fmt::format("provider {} (text)", name);
  } else if (YAML::Node l = Child(lf, "labels"); Present(l)) {
    nlohmann::ordered_json j = YamlToJson(l);
    p->format = j.is_object() && !j.empty() ? JsonFromLabels(j, &unknown) : DefaultJsonFormat();
    p->format.source = fmt::format("provider {} (labels)", name);
  } else if (Present(lf)) {
    // logFormat: {} — JSON with Istio's default labels.
    p->format = DefaultJsonFormat();
  }
  ReportUnknown(doc, at, Field(field, "envoyFileAccessLog.logFormat"), unknown);
  out_->providers[name] = std::move(p);
}

void ObservabilityCompiler::ReportUnknown(const Doc& doc, const YAML::Node& at,
                                          std::string_view field,
                                          const std::vector<std::string>& unknown) {
  for (const auto& u : unknown) {
    sink_.Add(doc, at, fmt::format("{}: command operator {} is not supported; logged as '-'",
                                   field, u));
  }
}

std::optional<LogOverlay> ObservabilityCompiler::AccessLogging(const Doc& doc) {
  const YAML::Node list = Child(doc.spec, "accessLogging");
  if (!Present(list)) return std::nullopt;
  if (!list.IsSequence()) {
    sink_.Invalid(doc, list, "spec.accessLogging: expected a list");
    return std::nullopt;
  }
  LogOverlay o;
  o.source = "Telemetry " + doc.Key();
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node e = list[i];
    const std::string f = Field("spec.accessLogging", i);
    ReportUnknownKeys(doc, e, f, {"providers", "disabled", "filter", "match"}, sink_);
    if (YAML::Node m = Child(Child(e, "match"), "mode"); Present(m)) {
      const std::string mode = Str(m);
      if (mode == "CLIENT") {
        sink_.Add(doc, m, fmt::format("{}.match.mode: CLIENT; the waypoint logs as the SERVER "
                                      "side of its hop, so this entry does not apply", f));
        continue;
      }
      if (mode != "SERVER" && mode != "CLIENT_AND_SERVER") {
        sink_.Invalid(doc, m, fmt::format("{}.match.mode: '{}' is not CLIENT, SERVER or "
                                          "CLIENT_AND_SERVER", f, mode));
        continue;
      }
    }
    bool disabled = false;
    if (YAML::Node d = Child(e, "disabled"); Present(d)) {
      if (Str(d) != "true" && Str(d) != "false") {
        sink_.Invalid(doc, d, fmt::format("{}.disabled: expected true or false", f));
        continue;
      }
      disabled = Str(d) == "true";
    }
    std::shared_ptr<const cel::Expr> filter;
    if (YAML::Node x = Child(Child(e, "filter"), "expression"); Present(x)) {
      auto parsed = cel::Expr::Parse(Str(x));
      if (!parsed.ok()) {
        sink_.Add(doc, x, fmt::format("{}.filter.expression '{}': {} (outside the supported CEL "
                                      "subset); entry not applied", f, Str(x),
                                      std::string(parsed.status().message())));
        continue;
      }
      filter = std::make_shared<const cel::Expr>(std::move(*parsed));
    }
    std::vector<std::string> names;
    if (YAML::Node p = Child(e, "providers"); p.IsSequence() && p.size() > 0) {
      for (const auto& x : p) names.push_back(Str(Child(x, "name")));
    } else {
      names = out_->default_providers;
    }
    for (const auto& name : names) {
      if (!out_->providers.contains(name)) {
        sink_.Add(doc, e, fmt::format("{}.providers: no access-log provider '{}' in the mesh "
                                      "config; not logged there", f, name));
        continue;
      }
      o.per_provider[name] = {disabled, filter};
    }
  }
  return o;
}

AccessLogPolicy ObservabilityCompiler::Effective(const std::vector<const LogOverlay*>& chain) const {
  std::map<std::string, LogOverlay::Entry> merged;
  AccessLogPolicy p;
  for (const LogOverlay* o : chain) {
    if (o->source.empty()) continue;
    p.configured = true;
    p.sources.push_back(o->source);
    for (const auto& [name, e] : o->per_provider) merged[name] = e;
  }
  for (const auto& [name, e] : merged) {
    if (e.disabled) continue;
    auto it = out_->providers.find(name);
    if (it == out_->providers.end()) continue;
    p.sinks.push_back({it->second, e.filter});
  }
  return p;
}

void ObservabilityCompiler::CollectAllHeaders() {
  auto add = [](std::vector<std::string>& v, const std::string& h) {
    if (std::find(v.begin(), v.end(), h) == v.end()) v.push_back(h);
  };
  auto policy = [&](const AccessLogPolicy& p) {
    for (const AccessLogSink& s : p.sinks) {
      std::vector<std::string> req, resp;
      CollectHeaders(s.provider->format, &req, &resp);
      if (s.filter) req.insert(req.end(), s.filter->headers().begin(), s.filter->headers().end());
      for (const auto& h : req) add(out_->request_headers, h);
      for (const auto& h : resp) add(out_->response_headers, h);
    }
  };
  auto metrics = [&](const MetricsPolicy& m) {
    for (const auto& list : m.tags) {
      for (const TagOverride& t : list) {
        if (t.value) {
          for (const auto& h : t.value->headers()) add(out_->request_headers, h);
        }
      }
    }
  };
  policy(out_->waypoint_log);
  for (const auto& [k, p] : out_->log_by_service) policy(p);
  metrics(out_->waypoint_metrics);
  for (const auto& [k, m] : out_->metrics_by_service) metrics(m);
}

}  // namespace internal

ObservabilityCompileResult CompileObservability(std::span<const config::ResourceConfig> resources,
                                                const mesh::Snapshot& snapshot,
                                                const mesh::Workload& self) {
  auto cfg = std::make_shared<ObservabilityConfig>();
  ObservabilityCompileResult result;
  internal::Sink sink(&result.findings);
  internal::ObservabilityCompiler c(resources, snapshot, self, cfg.get(), sink);
  c.Run();
  result.config = std::move(cfg);
  return result;
}

}  // namespace ambit::waypoint::route
