// The trace facts one request carries through the pipeline (RequestInfo
// holds one by value: no allocation when tracing is off). Filled by
// StartTrace / StampTrace (tracing.h), turned into spans when the request
// is recorded (RequestMetrics::Record).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/telemetry/trace_context.h"

namespace ambit::waypoint {

struct WaypointState;
namespace route {
struct TracingPolicy;
}

struct RequestTrace {
  bool active = false;   // a provider is configured: context read and propagated
  bool sampled = false;  // spans are exported when the request ends
  telemetry::TraceId trace_id;
  telemetry::SpanId parent;  // the downstream's span (invalid: we are the root)
  telemetry::SpanId server;  // SERVER span: the downstream request at the waypoint
  telemetry::SpanId client;  // CLIENT span: the upstream call (what upstream sees as parent)
  bool b3_in = false, b3_single = false, trace_64 = false;  // what to echo upstream
  bool had_headers = false;  // some trace header came in (to be replaced upstream)
  std::string tracestate;           // forwarded as received (when plausible)
  int64_t server_start_ns = 0;      // unix ns
  int64_t client_start_ns = 0;      // 0: no upstream call was made
  // Tries before the current one (each its own CLIENT span; a retry is a
  // new upstream call with a new span id).
  struct EarlierTry {
    telemetry::SpanId id;
    int64_t start_ns = 0, end_ns = 0;
  };
  std::vector<EarlierTry> earlier_tries;
  uint32_t try_no = 0;              // the try `client` belongs to
  std::vector<std::pair<std::string, std::string>> header_tags;  // custom tags from headers
  const route::TracingPolicy* policy = nullptr;  // in `state` (pinned by the request)
  const WaypointState* state = nullptr;
};

}  // namespace ambit::waypoint
