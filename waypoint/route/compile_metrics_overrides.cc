// Telemetry `metrics` → MetricsPolicy: overrides[].match.metric (or
// ALL_METRICS) with mode, `disabled`, and tagOverrides REMOVE / UPSERT on
// Istio's standard labels (UPSERT values are cel_expr.h expressions).
// Levels merge per metric and per tag (the more specific wins).
#include <fmt/format.h>

#include <algorithm>

#include "waypoint/route/compile_observability_internal.h"

namespace ambit::waypoint::route::internal {

namespace {

std::string Str(const YAML::Node& n) { return n.IsDefined() && n.IsScalar() ? n.Scalar() : ""; }

// The label names of the istio_* metrics (a tag override names one).
constexpr std::array<std::string_view, 25> kIstioLabels = {
    "reporter", "source_workload", "source_canonical_service", "source_canonical_revision",
    "source_workload_namespace", "source_principal", "source_app", "source_version",
    "source_cluster", "destination_workload", "destination_workload_namespace",
    "destination_principal", "destination_app", "destination_version", "destination_service",
    "destination_canonical_service", "destination_canonical_revision",
    "destination_service_name", "destination_service_namespace", "destination_cluster",
    "request_protocol", "response_code", "grpc_response_status", "response_flags",
    "connection_security_policy"};

std::optional<std::vector<Metric>> ParseMetric(std::string_view name) {
  if (name.empty() || name == "ALL_METRICS") {
    std::vector<Metric> all;
    for (size_t i = 0; i < static_cast<size_t>(Metric::kCount); ++i) {
      all.push_back(static_cast<Metric>(i));
    }
    return all;
  }
  for (size_t i = 0; i < static_cast<size_t>(Metric::kCount); ++i) {
    if (MetricName(static_cast<Metric>(i)) == name) return std::vector{static_cast<Metric>(i)};
  }
  return std::nullopt;
}

}  // namespace

std::optional<MetricsOverlay> ObservabilityCompiler::Metrics(const Doc& doc) {
  const YAML::Node list = Child(doc.spec, "metrics");
  if (!Present(list)) return std::nullopt;
  if (!list.IsSequence()) {
    sink_.Invalid(doc, list, "spec.metrics: expected a list");
    return std::nullopt;
  }
  MetricsOverlay o;
  o.source = "Telemetry " + doc.Key();
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node e = list[i];
    const std::string f = Field("spec.metrics", i);
    ReportUnknownKeys(doc, e, f, {"providers", "overrides", "reportingInterval"}, sink_);
    if (Present(Child(e, "reportingInterval"))) {
      sink_.Add(doc, Child(e, "reportingInterval"),
                fmt::format("{}.reportingInterval: Prometheus is scraped; ignored", f));
    }
    bool prometheus = true;
    if (YAML::Node p = Child(e, "providers"); p.IsSequence() && p.size() > 0) {
      prometheus = false;
      for (const auto& x : p) {
        const std::string name = Str(Child(x, "name"));
        if (name == "prometheus") {
          prometheus = true;
        } else {
          sink_.Add(doc, x, fmt::format("{}.providers: '{}' is not supported (only "
                                        "prometheus); ignored", f, name));
        }
      }
    }
    if (!prometheus) continue;
    const YAML::Node overrides = Child(e, "overrides");
    if (!overrides.IsDefined()) continue;
    if (!overrides.IsSequence()) {
      sink_.Invalid(doc, overrides, fmt::format("{}.overrides: expected a list", f));
      continue;
    }
    for (size_t j = 0; j < overrides.size(); ++j) {
      Override(doc, overrides[j], Field(Field(f, "overrides"), j), o);
    }
  }
  return o;
}

void ObservabilityCompiler::Override(const Doc& doc, const YAML::Node& n, const std::string& f,
                                     MetricsOverlay& o) {
  ReportUnknownKeys(doc, n, f, {"match", "disabled", "tagOverrides"}, sink_);
  const YAML::Node match = Child(n, "match");
  if (Present(Child(match, "customMetric"))) {
    sink_.Add(doc, match, fmt::format("{}.match.customMetric: custom metrics are not "
                                      "supported; ignored", f));
    return;
  }
  const std::string mode = Str(Child(match, "mode"));
  if (mode == "CLIENT") {
    sink_.Add(doc, match, fmt::format("{}.match.mode: CLIENT; the waypoint reports its "
                                      "metrics as the SERVER side (reporter=\"waypoint\"), so "
                                      "this override does not apply", f));
    return;
  }
  if (!mode.empty() && mode != "SERVER" && mode != "CLIENT_AND_SERVER") {
    sink_.Invalid(doc, match, fmt::format("{}.match.mode: '{}' is not CLIENT, SERVER or "
                                          "CLIENT_AND_SERVER", f, mode));
    return;
  }
  const std::string metric = Str(Child(match, "metric"));
  auto metrics = ParseMetric(metric);
  if (!metrics) {
    sink_.Invalid(doc, match, fmt::format("{}.match.metric: '{}' is not an Istio metric", f,
                                          metric));
    return;
  }
  std::optional<bool> disabled;
  if (YAML::Node d = Child(n, "disabled"); Present(d)) {
    if (Str(d) != "true" && Str(d) != "false") {
      sink_.Invalid(doc, d, fmt::format("{}.disabled: expected true or false", f));
      return;
    }
    disabled = Str(d) == "true";
  }
  std::vector<TagOverride> tags;
  if (YAML::Node t = Child(n, "tagOverrides"); t.IsMap()) {
    for (const auto& kv : t) {
      const std::string tag = Str(kv.first);
      const std::string tf = fmt::format("{}.tagOverrides.{}", f, tag);
      ReportUnknownKeys(doc, kv.second, tf, {"operation", "value"}, sink_);
      const std::string op = Str(Child(kv.second, "operation"));
      if (std::find(kIstioLabels.begin(), kIstioLabels.end(), tag) == kIstioLabels.end()) {
        sink_.Add(doc, kv.second, fmt::format("{}: only Istio's standard labels can be "
                                              "overridden (new labels are not supported); "
                                              "ignored", tf));
        continue;
      }
      TagOverride x;
      x.tag = tag;
      if (op == "REMOVE") {
        x.remove = true;
      } else if (op.empty() || op == "UPSERT") {
        const std::string v = Str(Child(kv.second, "value"));
        auto parsed = cel::Expr::Parse(v);
        if (v.empty() || !parsed.ok()) {
          sink_.Add(doc, kv.second, fmt::format(
                                        "{}.value '{}': {}; override not applied", tf, v,
                                        v.empty() ? "UPSERT needs a value"
                                                  : std::string(parsed.status().message())));
          continue;
        }
        x.value = std::make_shared<const cel::Expr>(std::move(*parsed));
      } else {
        sink_.Invalid(doc, kv.second, fmt::format("{}.operation: '{}' is not UPSERT or REMOVE",
                                                  tf, op));
        continue;
      }
      tags.push_back(std::move(x));
    }
  }
  if ((disabled.value_or(false) || !tags.empty()) &&
      std::any_of(metrics->begin(), metrics->end(),
                  [](Metric m) { return m >= Metric::kTcpOpened; })) {
    sink_.Add(doc, match, fmt::format("{}.match.metric: {}: the waypoint applies overrides to "
                                      "its HTTP istio_* metrics; istio_tcp_* (TCP fallback) "
                                      "keep theirs", f, metric.empty() ? "ALL_METRICS" : metric));
  }
  for (Metric m : *metrics) {
    const size_t i = static_cast<size_t>(m);
    if (disabled) o.disabled[i] = disabled;
    for (const TagOverride& t : tags) {
      std::erase_if(o.tags[i], [&](const TagOverride& y) { return y.tag == t.tag; });
      o.tags[i].push_back(t);
    }
  }
}

MetricsPolicy ObservabilityCompiler::EffectiveMetrics(
    const std::vector<const MetricsOverlay*>& chain) const {
  MetricsPolicy p;
  for (const MetricsOverlay* o : chain) {
    p.sources.push_back(o->source);
    for (size_t i = 0; i < p.disabled.size(); ++i) {
      if (o->disabled[i]) p.disabled[i] = *o->disabled[i];
      for (const TagOverride& t : o->tags[i]) {
        std::erase_if(p.tags[i], [&](const TagOverride& y) { return y.tag == t.tag; });
        p.tags[i].push_back(t);
      }
    }
  }
  return p;
}

}  // namespace ambit::waypoint::route::internal
