// Waypoint resolution shared by the outbound decision and inbound checks.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/mesh/lb.h"
#include "common/mesh/snapshot.h"

namespace ambit::mesh {

struct ResolvedWaypoint {
  const Workload* workload = nullptr;  // the waypoint pod chosen
  IpAddress ip;
  uint16_t port = kHbonePort;          // hbone_mtls_port
  std::vector<std::string> identities; // waypoint service SANs + pod identity
};

// The waypoint a service uses: weighted choice when weighted_waypoints has a
// positive weight, else Service::waypoint. Null if none.
const GatewayAddress* ChooseServiceWaypoint(const Service& svc, Rng& rng);

// Resolves a waypoint reference to one pod (LB in waypoint mode for a
// hostname/VIP). Error text when it cannot be resolved.
StatusOr<ResolvedWaypoint> ResolveWaypoint(const Snapshot& snap, const GatewayAddress& gw,
                                           const Workload& source, Rng& rng);

// True if `w` is one of the pods behind the waypoint reference: same
// identity and a shared address (ztunnel check_from_waypoint).
bool IsWaypointWorkload(const Snapshot& snap, const GatewayAddress& gw, const Workload& w);

}  // namespace ambit::mesh
