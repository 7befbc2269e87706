#include "waypoint/proxy/filters.h"

#include "waypoint/proxy/rbac_filter.h"
#include "waypoint/proxy/ratelimit_filter.h"

namespace ambit::waypoint {

io::Task<FilterVerdict> RunRequestFilters(const Downstream& d, const RouteResult& rr,
                                          const FilterRequest& req, RequestInfo& info,
                                          io::CancelScope* scope) {
  FilterVerdict v;
  // Authorization (RBAC) first, then rate limits.
  if (auto denied = AuthorizeRequest(d, req, info)) {
    v.reply = std::move(denied);
    co_return v;
  }
  co_await RunRateLimits(d, rr, req, info, scope, v);
  co_return v;
}

}  // namespace ambit::waypoint
