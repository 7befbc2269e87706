#include "waypoint/app/span_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/base/json.h"

namespace ambit::waypoint {

namespace {

using base::AppendJsonString;

// `"key":` then the caller's value.
void Key(std::string& out, std::string_view key) {
  AppendJsonString(out, key);
  out.push_back(':');
}

void StringField(std::string& out, std::string_view key, std::string_view value) {
  Key(out, key);
  AppendJsonString(out, value);
}

template <typename Int>
void IntField(std::string& out, std::string_view key, Int value) {
  Key(out, key);
  fmt::format_to(std::back_inserter(out), "{}", value);
}

// OTLP enums: SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3;
// STATUS_CODE_UNSET = 0, STATUS_CODE_ERROR = 2. Times are unix-nano strings.
void OtlpSpan(std::string& out, const SpanRecord& s) {
  out.push_back('{');
  StringField(out, "traceId", s.trace_id.Hex());
  out.push_back(',');
  StringField(out, "spanId", s.span_id.Hex());
  if (s.parent_id.valid()) {
    out.push_back(',');
    StringField(out, "parentSpanId", s.parent_id.Hex());
  }
  out.push_back(',');
  StringField(out, "name", s.name);
  out.push_back(',');
  IntField(out, "kind", s.server ? 2 : 3);
  out.push_back(',');
  StringField(out, "startTimeUnixNano", std::to_string(s.start_ns));
  out.push_back(',');
  StringField(out, "endTimeUnixNano", std::to_string(s.end_ns));
  out += ",\"attributes\":[";
  for (size_t i = 0; i < s.tags.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.push_back('{');
    StringField(out, "key", s.tags[i].first);
    out += ",\"value\":{";
    StringField(out, "stringValue", s.tags[i].second);
    out += "}}";
  }
  out += "],\"status\":{";
  IntField(out, "code", s.error ? 2 : 0);
  out += "}}";
}

}  // namespace

std::string EncodeOtlpJson(std::span<const SpanRecord> spans) {
  // One resource per tracing service name (the waypoint), one scope.
  std::map<std::string_view, std::vector<const SpanRecord*>> by_service;
  for (const SpanRecord& s : spans) by_service[s.service_name].push_back(&s);
  std::string out;
  out.reserve(spans.size() * 1536 + 64);
  out += "{\"resourceSpans\":[";
  bool first_resource = true;
  for (const auto& [service, list] : by_service) {
    if (!first_resource) out.push_back(',');
    first_resource = false;
    out += "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{";
    StringField(out, "stringValue", service);
    out += "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"ambit-waypoint\"},\"spans\":[";
    for (size_t i = 0; i < list.size(); ++i) {
      if (i > 0) out.push_back(',');
      OtlpSpan(out, *list[i]);
    }
    out += "]}]}";
  }
  out += "]}";
  return out;
}

std::string EncodeZipkinJson(std::span<const SpanRecord> spans) {
  std::string out;
  out.reserve(spans.size() * 1536 + 2);
  out.push_back('[');
  for (size_t n = 0; n < spans.size(); ++n) {
    const SpanRecord& s = spans[n];
    if (n > 0) out.push_back(',');
    out.push_back('{');
    StringField(out, "traceId", telemetry::B3TraceIdHex(s.trace_id, true));
    out.push_back(',');
    StringField(out, "id", s.span_id.Hex());
    if (s.parent_id.valid()) {
      out.push_back(',');
      StringField(out, "parentId", s.parent_id.Hex());
    }
    out.push_back(',');
    StringField(out, "name", s.name);
    out.push_back(',');
    StringField(out, "kind", s.server ? "SERVER" : "CLIENT");
    out.push_back(',');
    IntField(out, "timestamp", s.start_ns / 1000);
    out.push_back(',');
    // From the rounded ends, so a child never seems to outlast its parent.
    IntField(out, "duration", std::max<int64_t>(1, s.end_ns / 1000 - s.start_ns / 1000));
    out += ",\"localEndpoint\":{";
    StringField(out, "serviceName", s.service_name);
    if (!s.local_ip.empty()) {
      out.push_back(',');
      StringField(out, s.local_ip.find(':') != std::string::npos ? "ipv6" : "ipv4", s.local_ip);
    }
    out += "},\"tags\":{";
    // Zipkin tags are a map: a repeated key keeps its last value (a custom
    // tag may override one of Envoy's).
    std::map<std::string_view, std::string_view> tags;
    for (const auto& [k, v] : s.tags) tags[k] = v;
    bool first = true;
    for (const auto& [k, v] : tags) {
      if (!first) out.push_back(',');
      first = false;
      StringField(out, k, v);
    }
    out += "}}";
  }
  out.push_back(']');
  return out;
}

}  // namespace ambit::waypoint
