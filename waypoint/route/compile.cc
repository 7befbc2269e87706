#include "waypoint/route/compile.h"

#include "waypoint/route/compile_util.h"

namespace ambit::waypoint::route {

CompileResult Compile(std::span<const config::ResourceConfig> resources,
                      const mesh::Snapshot& snapshot, uint64_t generation,
                      const mesh::Workload* self) {
  auto cfg = std::make_shared<RouteConfig>();
  cfg->generation = generation;
  CompileResult result;
  internal::Sink sink(&result.findings);
  internal::CompileDestinationRules(resources, snapshot, cfg.get(), sink);
  internal::CompileGatewayRoutes(resources, snapshot, cfg.get(), sink);
  internal::CompileVirtualServices(resources, snapshot, cfg.get(), sink);
  internal::CompileRateLimits(resources, snapshot, self, cfg.get(), sink);
  result.config = std::move(cfg);
  return result;
}

}  // namespace ambit::waypoint::route
