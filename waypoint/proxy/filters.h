// The request filters between the route step and the router's action
// (WAYPOINT.md §3), in Envoy's order: authorization (RBAC), rate limits,
// then fault injection (router.h DecideFault) and the router itself. Each
// filter sees the request head and the matched route and may answer
// locally (403 RBAC, 429 RL) or add response headers (x-ratelimit-*).
// Both codecs call RunRequestFilters once per request, after RouteHeaders.
// Worker thread only.
#pragma once

#include <optional>
#include <string_view>

#include "common/io/cancel.h"
#include "common/io/task.h"
#include "waypoint/proxy/downstream.h"
#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/request_log.h"
#include "waypoint/proxy/router.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint {

// The request as the filters see it (before the route's header edits and
// rewrites, as Envoy's filters before the router do).
struct FilterRequest {
  std::string_view method;
  std::string_view path;       // with query
  std::string_view authority;  // :authority / Host
  const route::RequestView::Headers* headers = nullptr;  // lower-case lookup
  bool grpc = false;
};

struct FilterVerdict {
  // Set: answer with it and stop (the filter counted and flagged it).
  std::optional<LocalReply> reply;
  // Added to the response that goes downstream (also to a local reply).
  route::HeaderOps response_headers;
};

// Runs every request filter in order; the first local answer wins.
// `info` gets the flags/details a filter decides. `scope` cancels a filter
// that waits (a remote rate-limit call) when the request goes away.
io::Task<FilterVerdict> RunRequestFilters(const Downstream& d, const RouteResult& rr,
                                          const FilterRequest& req, RequestInfo& info,
                                          io::CancelScope* scope);

}  // namespace ambit::waypoint
