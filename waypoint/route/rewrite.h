// Path rewrites and redirect targets (WAYPOINT.md §5): pure functions over
// the compiled route model, shared by the HTTP/1.1 and HTTP/2 paths.
#pragma once

#include <string>
#include <string_view>

#include "waypoint/route/route_table.h"

namespace ambit::waypoint::route {

// The request-target sent upstream after `rw`. `path` is the request's
// path with its query ("/a/b?x=1"); the query is kept unchanged and never
// rewritten. `matched` is the path condition of the block that matched
// (null or kAny when the block had none: the matched prefix is then "/").
//   kPrefix             the matched prefix (exact/regex: the whole path) is
//                       replaced by rw.value as a plain string (Envoy
//                       prefix_rewrite)
//   kFull               the path becomes rw.value
//   kReplacePrefixMatch Gateway API's table (segment-aware, never "//",
//                       an empty result is "/")
//   kRegex              RE2::GlobalReplace of rw.regex by rw.value on the path
//                       (Envoy regex_rewrite: the query is not seen)
// A path that does not carry the matched prefix, or a regex that did not
// compile, leaves `path` unchanged; an empty rewritten path becomes "/".
std::string RewritePath(const PathRewrite& rw, const PathMatcher* matched, std::string_view path);

// The Location of a redirect. `scheme` is the request's ("http" inside the
// mesh unless x-forwarded-proto says otherwise), `authority` its Host /
// :authority (may carry a port; IPv6 literals in brackets), `path` its path
// with query. Rules:
//   - scheme: r.scheme, else the request's
//   - host: r.authority, else the request's host (its port dropped)
//   - port: r.port; else the port written in r.authority ("host:port"); else
//     with r.gateway_port_rules (Gateway API) the redirect scheme's
//     well-known port when r.scheme is set, else `listener_port` (the
//     service port); without them (VirtualService, as Envoy does) the
//     request's port when the host is kept, except that a scheme change
//     drops the old scheme's well-known port (http://h:80 → https://h).
//     80 with http and 443 with https are never written.
//   - path: RewritePath(r.path, matched, path) (the query kept), except that
//     a kFull value carrying its own "?query" replaces the request's (Envoy
//     path_redirect)
// Without any host (no r.authority, empty `authority`) the Location is the
// path alone (a relative reference).
std::string RedirectLocation(const Redirect& r, const PathMatcher* matched,
                             std::string_view scheme, std::string_view authority,
                             std::string_view path, uint16_t listener_port);

}  // namespace ambit::waypoint::route
