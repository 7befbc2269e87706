// DestinationRule trafficPolicy → RouteConfig::policies (traffic_policy.h).
// compile_traffic_policy.cc reads the structure (top level,
// portLevelSettings, subsets) and merges it per cluster as istiod does;
// the parts are compiled by compile_lb_policy.cc and
// compile_cluster_limits.cc. Each part returns nullopt after a finding when
// it cannot be used (Sink::Invalid for values Istio's validation refuses).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/mesh/snapshot.h"
#include "waypoint/route/compile_util.h"
#include "waypoint/route/traffic_policy.h"

namespace ambit::waypoint::route::internal {

std::optional<LoadBalancerPolicy> CompileLoadBalancer(const Doc& doc, const YAML::Node& n,
                                                      const std::string& field, Sink& sink);
std::optional<ConnectionPoolPolicy> CompileConnectionPool(const Doc& doc, const YAML::Node& n,
                                                          const std::string& field, Sink& sink);
std::optional<OutlierPolicy> CompileOutlierDetection(const Doc& doc, const YAML::Node& n,
                                                     const std::string& field, Sink& sink);

// The policies of one DestinationRule for every port of `svc`: the whole
// service's clusters and, for each (name, trafficPolicy node) of
// `subsets`, the subset's.
void CompileTrafficPolicies(const Doc& doc, const mesh::Service& svc,
                            const std::vector<std::pair<std::string, YAML::Node>>& subsets,
                            RouteConfig* out, Sink& sink);

}  // namespace ambit::waypoint::route::internal
