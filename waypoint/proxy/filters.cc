#include "waypoint/proxy/filters.h"

namespace ambit::waypoint {

io::Task<FilterVerdict> RunRequestFilters(const Downstream& d, const RouteResult& rr,
                                          const FilterRequest& req, RequestInfo& info,
                                          io::CancelScope* scope) {
  (void)d;
  (void)rr;
  (void)req;
  (void)info;
  (void)scope;
  FilterVerdict v;
  // Authorization (RBAC) and rate limits come here, in that order.
  co_return v;
}

}  // namespace ambit::waypoint
