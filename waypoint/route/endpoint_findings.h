// Endpoints of the services this waypoint serves that it cannot send
// requests to, as config findings (a warning each, never silent): hostname-
// only workloads (ServiceEntry `resolution: DNS`; the waypoint does not
// resolve hostnames, the agent does) and endpoints on another network.
#pragma once

#include <vector>

#include "common/mesh/snapshot.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint::route {

std::vector<Finding> UnreachableEndpointFindings(const mesh::Snapshot& snap,
                                                 const mesh::Workload& self);

}  // namespace ambit::waypoint::route
