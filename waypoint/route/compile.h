// Compiling the routing resources of the watched config into one immutable
// RouteConfig (route_table.h), with a Finding for everything that could not
// be applied as written. Control thread only; one call per config change.
//
// Order: DestinationRule subsets first (VirtualService destinations name
// them), then HTTPRoute / GRPCRoute (compile_gateway.cc), then
// VirtualService (compile_istio.cc), then the rate limit policies
// (compile_ratelimit.cc). A service port that both a Gateway API
// route and a VirtualService bind keeps the Gateway API routes and reports
// the VirtualService as conflicting (Istio does not merge the two either).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "common/config/local_config.h"
#include "common/mesh/snapshot.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint::route {

struct CompileResult {
  std::shared_ptr<const RouteConfig> config;  // never null
  std::vector<Finding> findings;
};

// `self` is the waypoint's own workload: rate limit policies (EnvoyFilter,
// RateLimitPolicy) bind by targetRefs / workloadSelector against it; null
// binds every one (tests).
CompileResult Compile(std::span<const config::ResourceConfig> resources,
                      const mesh::Snapshot& snapshot, uint64_t generation,
                      const mesh::Workload* self = nullptr);

namespace internal {
class Sink;
// DestinationRule → out->subsets (and findings for what is kept for later).
void CompileDestinationRules(std::span<const config::ResourceConfig> resources,
                             const mesh::Snapshot& snapshot, RouteConfig* out, Sink& sink);
// HTTPRoute / GRPCRoute (+ ReferenceGrant) → out->tables, out->clusters.
void CompileGatewayRoutes(std::span<const config::ResourceConfig> resources,
                          const mesh::Snapshot& snapshot, RouteConfig* out, Sink& sink);
// VirtualService → out->tables (ports that already have a table: conflict).
void CompileVirtualServices(std::span<const config::ResourceConfig> resources,
                            const mesh::Snapshot& snapshot, RouteConfig* out, Sink& sink);
// EnvoyFilter rate limit patches and RateLimitPolicy → out->rate_limits.
void CompileRateLimits(std::span<const config::ResourceConfig> resources,
                       const mesh::Snapshot& snapshot, const mesh::Workload* self,
                       RouteConfig* out, Sink& sink);
}  // namespace internal

}  // namespace ambit::waypoint::route
