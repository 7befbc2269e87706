// DestinationRule trafficPolicy.loadBalancer → LoadBalancerPolicy.
#include <fmt/format.h>

#include "waypoint/route/compile_traffic_policy.h"

namespace ambit::waypoint::route::internal {

std::optional<LoadBalancerPolicy> CompileLoadBalancer(const Doc& doc, const YAML::Node& n,
                                                      const std::string& field, Sink& sink) {
  sink.Add(doc, n, fmt::format("{}: not supported yet; the default (LEAST_REQUEST) applies",
                               field));
  return std::nullopt;
}

}  // namespace ambit::waypoint::route::internal
