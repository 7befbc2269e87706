// TEMPORARY placeholder until the HTTPRoute/GRPCRoute compiler lands.
#include "waypoint/route/compile.h"
#include "waypoint/route/compile_util.h"

namespace ambit::waypoint::route::internal {
void CompileGatewayRoutes(std::span<const config::ResourceConfig> resources,
                          const mesh::Snapshot&, RouteConfig*, Sink& sink) {
  for (const auto& rc : resources) {
    if (rc.kind == "HTTPRoute" || rc.kind == "GRPCRoute") {
      sink.AddRaw(rc, "not supported yet; ignored");
    }
  }
}
}  // namespace ambit::waypoint::route::internal
