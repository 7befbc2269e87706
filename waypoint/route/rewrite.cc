// TEMPORARY placeholder until the rewrite implementation lands.
#include "waypoint/route/rewrite.h"

namespace ambit::waypoint::route {
std::string RewritePath(const PathRewrite& rw, const PathMatcher*, std::string_view path) {
  if (rw.kind == PathRewrite::Kind::kNone) return std::string(path);
  return rw.value;
}
std::string RedirectLocation(const Redirect& r, const PathMatcher*, std::string_view scheme,
                             std::string_view authority, std::string_view path, uint16_t) {
  return std::string(r.scheme.value_or(std::string(scheme))) + "://" +
         r.authority.value_or(std::string(authority)) + std::string(path);
}
}  // namespace ambit::waypoint::route
