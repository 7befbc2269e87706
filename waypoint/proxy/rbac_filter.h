// The authorization (RBAC) request filter: the AuthorizationPolicies bound
// to this waypoint (route/authz.h), evaluated per request before rate
// limits and faults. A denial answers 403 `RBAC: access denied` (gRPC
// PERMISSION_DENIED) with response flag RBAC; AUDIT and dry-run matches are
// logged ("rbac audit", "rbac shadow") and counted. Worker thread only.
#pragma once

#include <optional>

#include "waypoint/proxy/downstream.h"
#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/request_log.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint {

struct FilterRequest;

inline constexpr std::string_view kRbacFlag = "RBAC";

// nullopt: the request may go on. Counts every decision of a request that
// some policy applied to (ambit_waypoint_rbac_{allowed,denied,shadow,audit}).
std::optional<LocalReply> AuthorizeRequest(const Downstream& d, const FilterRequest& req,
                                           RequestInfo& info);

// The same policies for a connection relayed as TCP: false = close it.
// HTTP-only rules read as istiod programs a TCP filter chain (authz.h
// AuthzRule::http).
bool AuthorizeConnection(const Downstream& d);

}  // namespace ambit::waypoint
