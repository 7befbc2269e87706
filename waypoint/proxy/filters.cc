#include "waypoint/proxy/filters.h"

#include "waypoint/proxy/ratelimit_filter.h"

namespace ambit::waypoint {

io::Task<FilterVerdict> RunRequestFilters(const Downstream& d, const RouteResult& rr,
                                          const FilterRequest& req, RequestInfo& info,
                                          io::CancelScope* scope) {
  FilterVerdict v;
  // Authorization (RBAC) comes first, then rate limits.
  co_await RunRateLimits(d, rr, req, info, scope, v);
  co_return v;
}

}  // namespace ambit::waypoint
