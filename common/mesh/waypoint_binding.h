// Standalone waypoint binding: resolves `istio.io/use-waypoint` labels of the
// local config into Service::waypoint / Workload::waypoint the way istiod does
// (pilot/pkg/serviceregistry/ambient/waypoints.go), so the agent sees what
// istiod would have sent over WDS.
//
// Waypoints: a Gateway API Gateway of class istio-waypoint or ambit-waypoint,
// and any (namespace, NAME) that workloads name with the label
// `gateway.networking.k8s.io/gateway-name: NAME` (its instances). Its address
// is the service NAME in its namespace (hostname form, port 15008), else its
// first instance's IP; with neither it is "not ready" (a finding). It serves
// what `istio.io/waypoint-for` on the Gateway says: service (default),
// workload, all, none. Cross-namespace use needs the Gateway's HBONE/15008
// listener to allow it (allowedRoutes.namespaces.from: All | Selector).
//
// Binding, as istiod:
//  - a service: its own label, else its namespace's (the `namespaces:` list);
//    `none` on the service opts out; the waypoint must serve `service`|`all`.
//    A waypoint's own service never gets a waypoint.
//  - a workload (workload-addressed traffic only): its own label, else its
//    namespace's; the waypoint must serve `workload`|`all` (inherited from a
//    namespace whose waypoint only serves services: silently none). A waypoint
//    instance never gets a waypoint.
//  - `istio.io/use-waypoint-namespace` on the same object names the
//    waypoint's namespace (default: the object's own).
//  - an explicit `waypoint:` / `weightedWaypoints:` entry (ztunnel's raw form)
//    wins over labels.
// Service and workload bindings are independent (istiod): a workload label
// does not change where traffic to its service VIP goes.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/config/local_config.h"
#include "common/mesh/types.h"

namespace ambit::mesh {

inline constexpr std::string_view kUseWaypointLabel = "istio.io/use-waypoint";
inline constexpr std::string_view kUseWaypointNamespaceLabel = "istio.io/use-waypoint-namespace";
inline constexpr std::string_view kGatewayNameLabel = "gateway.networking.k8s.io/gateway-name";

struct WaypointBindings {
  std::map<size_t, GatewayAddress> services;   // index in LocalConfig::services
  std::map<size_t, GatewayAddress> workloads;  // index in LocalConfig::workloads
  // Non-fatal: a named waypoint that does not exist or is not ready, an
  // attachment the waypoint does not allow, a waypoint-for mismatch.
  std::vector<std::string> findings;
};

// Fails on malformed label values and duplicate namespaces / waypoints.
StatusOr<WaypointBindings> BindWaypoints(const config::LocalConfig& cfg);

// A waypoint's own pod (label gateway.networking.k8s.io/gateway-name).
bool IsWaypointInstance(const Workload& w);

}  // namespace ambit::mesh
