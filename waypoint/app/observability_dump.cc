// /config_dump "observability": the effective access logging (providers,
// their path and format, filters) and metrics overrides of the waypoint and
// of services with their own Telemetry, and the MeshConfig fields read.
// Counters of lines written / dropped / filtered are on /metrics
// (ambit_waypoint_access_log_lines_*).
#include <nlohmann/json.hpp>

#include "waypoint/app/waypoint.h"

namespace ambit::waypoint {

namespace {

using nlohmann::json;

std::string FormatText(const route::LogFormat& f) {
  std::string out;
  for (const route::LogSegment& s : f.segments) {
    out += s.op == route::LogOp::kLiteral || s.op == route::LogOp::kUnknown ? s.text : "%op%";
  }
  return out;
}

json LogPolicyJson(const route::AccessLogPolicy& p) {
  json sinks = json::array();
  for (const route::AccessLogSink& s : p.sinks) {
    sinks.push_back({{"provider", s.provider->name},
                     {"path", s.provider->path},
                     {"filter", s.filter != nullptr ? json(s.filter->text()) : json(nullptr)}});
  }
  return {{"configured", p.configured}, {"providers", sinks}, {"sources", p.sources}};
}

json MetricsPolicyJson(const route::MetricsPolicy& p) {
  json disabled = json::array();
  json tags = json::object();
  for (size_t i = 0; i < p.disabled.size(); ++i) {
    const auto m = static_cast<route::Metric>(i);
    const std::string name(route::MetricName(m));
    if (p.disabled[i]) disabled.push_back(name);
    for (const route::TagOverride& t : p.Tags(m)) {
      tags[name][t.tag] = t.remove ? json{{"operation", "REMOVE"}}
                                   : json{{"operation", "UPSERT"}, {"value", t.value->text()}};
    }
  }
  return {{"disabled", disabled}, {"tagOverrides", tags}, {"sources", p.sources}};
}

}  // namespace

std::string Waypoint::ObservabilityDump() const {
  json out = json::object();
  if (observability_ == nullptr) return out.dump();
  const route::ObservabilityConfig& c = *observability_;
  json providers = json::array();
  for (const auto& [name, p] : c.providers) {
    json labels = json::array();
    for (const auto& [k, v] : p->format.labels) labels.push_back(k);
    providers.push_back({{"name", name},
                         {"path", p->path},
                         {"encoding", p->format.json ? "JSON" : "TEXT"},
                         {"format", p->format.source},
                         {"text", p->format.json ? json(nullptr) : json(FormatText(p->format.text))},
                         {"labels", labels}});
  }
  out["accessLog"] = {{"providers", providers},
                      {"defaultProviders", c.default_providers},
                      {"meshConfig", {{"accessLogFile", c.access_log_file},
                                      {"accessLogEncoding", c.access_log_encoding},
                                      {"accessLogFormat", c.access_log_format}}},
                      {"waypoint", LogPolicyJson(c.waypoint_log)},
                      {"services", json::object()},
                      {"capturedRequestHeaders", c.request_headers}};
  for (const auto& [k, p] : c.log_by_service) out["accessLog"]["services"][k] = LogPolicyJson(p);
  out["metrics"] = {{"waypoint", MetricsPolicyJson(c.waypoint_metrics)},
                    {"services", json::object()}};
  for (const auto& [k, p] : c.metrics_by_service) out["metrics"]["services"][k] = MetricsPolicyJson(p);
  return out.dump();
}

}  // namespace ambit::waypoint
