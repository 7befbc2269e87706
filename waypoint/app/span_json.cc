#include "waypoint/app/span_json.h"

#include <map>
#include <nlohmann/json.hpp>

namespace ambit::waypoint {

namespace {

using nlohmann::json;

// OTLP enums: SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3;
// STATUS_CODE_UNSET = 0, STATUS_CODE_ERROR = 2.
json OtlpSpan(const SpanRecord& s) {
  json attrs = json::array();
  for (const auto& [k, v] : s.tags) {
    attrs.push_back({{"key", k}, {"value", {{"stringValue", v}}}});
  }
  json span = {{"traceId", s.trace_id.Hex()},
               {"spanId", s.span_id.Hex()},
               {"name", s.name},
               {"kind", s.server ? 2 : 3},
               {"startTimeUnixNano", std::to_string(s.start_ns)},
               {"endTimeUnixNano", std::to_string(s.end_ns)},
               {"attributes", attrs},
               {"status", {{"code", s.error ? 2 : 0}}}};
  if (s.parent_id.valid()) span["parentSpanId"] = s.parent_id.Hex();
  return span;
}

}  // namespace

std::string EncodeOtlpJson(std::span<const SpanRecord> spans) {
  // One resource per tracing service name (the waypoint), one scope.
  std::map<std::string, json> by_service;
  for (const SpanRecord& s : spans) {
    json& list = by_service[s.service_name];
    if (list.is_null()) list = json::array();
    list.push_back(OtlpSpan(s));
  }
  json resource_spans = json::array();
  for (auto& [service, list] : by_service) {
    resource_spans.push_back(
        {{"resource",
          {{"attributes", json::array({{{"key", "service.name"},
                                        {"value", {{"stringValue", service}}}}})}}},
         {"scopeSpans",
          json::array({{{"scope", {{"name", "ambit-waypoint"}}}, {"spans", std::move(list)}}})}});
  }
  return json{{"resourceSpans", resource_spans}}.dump();
}

std::string EncodeZipkinJson(std::span<const SpanRecord> spans) {
  json out = json::array();
  for (const SpanRecord& s : spans) {
    json tags = json::object();
    for (const auto& [k, v] : s.tags) tags[k] = v;
    json local = {{"serviceName", s.service_name}};
    if (!s.local_ip.empty()) {
      local[s.local_ip.find(':') != std::string::npos ? "ipv6" : "ipv4"] = s.local_ip;
    }
    json span = {{"traceId", telemetry::B3TraceIdHex(s.trace_id, true)},
                 {"id", s.span_id.Hex()},
                 {"name", s.name},
                 {"kind", s.server ? "SERVER" : "CLIENT"},
                 {"timestamp", s.start_ns / 1000},
                 // From the rounded ends, so a child never seems to outlast its parent.
                 {"duration", std::max<int64_t>(1, s.end_ns / 1000 - s.start_ns / 1000)},
                 {"localEndpoint", local},
                 {"tags", tags}};
    if (s.parent_id.valid()) span["parentId"] = s.parent_id.Hex();
    out.push_back(std::move(span));
  }
  return out.dump();
}

}  // namespace ambit::waypoint
