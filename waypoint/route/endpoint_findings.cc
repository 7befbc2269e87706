#include "waypoint/route/endpoint_findings.h"

#include <fmt/format.h>

#include "waypoint/route/compile_authz.h"

namespace ambit::waypoint::route {

std::vector<Finding> UnreachableEndpointFindings(const mesh::Snapshot& snap,
                                                 const mesh::Workload& self) {
  std::vector<Finding> out;
  for (const auto& [key, svc] : snap.services()) {
    if (!UsesWaypoint(snap, svc, self)) continue;
    for (const auto& [uid, ep] : svc.endpoints) {
      const mesh::Workload* w = snap.FindWorkload(uid);
      if (w == nullptr || w->uid == self.uid) continue;
      std::string why;
      if (w->addresses.empty() && !w->hostname.empty()) {
        why = fmt::format("endpoint {} has only a hostname ({}): the waypoint does not resolve "
                          "hostnames, so requests go to the service's other endpoints",
                          uid, w->hostname);
      } else if (w->network != self.network) {
        why = fmt::format("endpoint {} is on network '{}', the waypoint on '{}': cross-network "
                          "endpoints are not supported, so requests go to the other endpoints",
                          uid, w->network, self.network);
      } else {
        continue;
      }
      out.push_back({"", "Service", key, std::move(why), false});
    }
  }
  return out;
}

}  // namespace ambit::waypoint::route
