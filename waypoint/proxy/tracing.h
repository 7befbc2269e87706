// Distributed tracing at the waypoint hop (WAYPOINT.md §7): the trace
// context is read from the downstream request (W3C traceparent/tracestate,
// B3 single or multi header), a new one started when missing or malformed;
// a SERVER span covers the downstream request (child of the incoming span)
// and a CLIENT span the upstream call (child of the server span; its id is
// what the upstream receives as parent). Sampling follows the Telemetry
// randomSamplingPercentage unless the downstream decided already. Spans go
// to a SpanSink (the exporter thread, waypoint/app/span_exporter.h) when the
// request is recorded; nothing here blocks.
#pragma once

#include <absl/functional/function_ref.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/ascii.h"
#include "waypoint/proxy/downstream.h"
#include "waypoint/proxy/request_log.h"
#include "waypoint/proxy/worker.h"
#include "waypoint/route/tracing_policy.h"

namespace ambit::waypoint {

// One finished span, self-contained (it outlives the request and state).
struct SpanRecord {
  std::shared_ptr<const route::TracingProvider> provider;
  telemetry::TraceId trace_id;
  telemetry::SpanId span_id, parent_id;  // parent invalid: root span
  bool server = true;                    // SERVER, else CLIENT
  std::string name;
  std::string service_name;              // the waypoint as a tracing service
  std::string local_ip;
  int64_t start_ns = 0, end_ns = 0;      // unix ns
  bool error = false;                    // 5xx or no response
  std::vector<std::pair<std::string, std::string>> tags;
};

class SpanSink {
 public:
  virtual ~SpanSink() = default;
  // Never blocks for long (a short lock); drops are the sink's to count.
  virtual void Submit(std::vector<SpanRecord> spans) = 0;
};

using HeaderLookup = absl::FunctionRef<std::optional<std::string_view>(std::string_view)>;

// The trace headers of a request, found in one pass over its headers (the
// first of each name counts).
struct TraceHeaders {
  std::optional<std::string_view> traceparent, tracestate, b3, b3_trace, b3_span, b3_sampled,
      b3_flags, b3_parent;
  bool any = false;
  void Note(std::string_view name, std::string_view value);
};

// The tracing policy for the request's service (the waypoint's when none).
const route::TracingPolicy* TracingPolicyFor(const WaypointState& st, const RequestInfo& info);
// Reads the incoming context and decides sampling; `random` is uniform;
// `find` looks up the headers customTags name.
void StartTraceWith(const WaypointState& st, RequestInfo& info, const TraceHeaders& in,
                    HeaderLookup find, uint64_t random);
// The same with the request's policy already looked up (active()).
void StartTraceWith(const WaypointState& st, const route::TracingPolicy& policy,
                    RequestInfo& info, const TraceHeaders& in, HeaderLookup find,
                    uint64_t random);
// Upstream headers for this request's CLIENT span (replacing the incoming
// trace headers).
std::vector<std::pair<std::string, std::string>> UpstreamTraceHeaders(RequestTrace& t);
// The spans of a finished request (empty unless sampled and reported).
std::vector<SpanRecord> FinishTrace(const RequestInfo& info);
bool IsTraceHeader(std::string_view name);
// Try `try_no` (1-based) starts: from the second try on, the previous CLIENT
// span ends now and a new one begins. Returns whether the ids changed.
bool NextClientSpan(RequestTrace& t, uint32_t try_no);
// The HTTP/1.1 head goes up serialized (built once per request): the trace
// headers StampTrace added are rewritten in place for a retry.
void StampTraceTry(RequestInfo& info, uint32_t try_no, std::string& serialized_head);

// Hooks for the codec paths: after the route step, and once the request
// head toward the upstream is being built.
template <typename Headers>
void StartTrace(const Downstream& d, RequestInfo& info, const Headers& headers) {
  if (d.state == nullptr || d.state->tracing == nullptr) return;
  const route::TracingPolicy* policy = TracingPolicyFor(*d.state, info);
  if (policy == nullptr) return;  // tracing off: nothing to do
  TraceHeaders in;
  for (const auto& h : headers) in.Note(h.name, h.value);
  StartTraceWith(
      *d.state, *policy, info, in,
      [&](std::string_view name) -> std::optional<std::string_view> {
        for (const auto& h : headers) {
          if (base::EqualsIgnoreCase(h.name, name)) return std::string_view(h.value);
        }
        return std::nullopt;
      },
      d.worker.Random());
}

template <typename Headers>
void StampTrace(RequestInfo& info, Headers& headers) {
  if (!info.trace.active) return;
  if (info.trace.had_headers) {
    std::erase_if(headers, [](const auto& h) { return IsTraceHeader(h.name); });
  }
  auto add = UpstreamTraceHeaders(info.trace);
  headers.reserve(headers.size() + add.size());
  for (auto& [k, v] : add) headers.push_back({std::move(k), std::move(v)});
  info.trace.try_no = 1;
}

// Per try, before the request goes up (HTTP/2 headers are sent per try).
template <typename Headers>
void StampTraceTry(RequestInfo& info, uint32_t try_no, Headers& headers) {
  if (!info.trace.active || !NextClientSpan(info.trace, try_no)) return;
  std::erase_if(headers, [](const auto& h) { return IsTraceHeader(h.name); });
  for (auto& [k, v] : UpstreamTraceHeaders(info.trace)) {
    headers.push_back({std::move(k), std::move(v)});
  }
}

}  // namespace ambit::waypoint
