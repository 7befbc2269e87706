// /config_dump sections for routing (route_dump.cc) and rate limits
// (ratelimit_dump.cc).
#pragma once

#include <nlohmann/json.hpp>

#include "common/mesh/snapshot.h"
#include "waypoint/proxy/ratelimit_filter.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint {

// Rate limit policies and their buckets (ratelimit_dump.cc).
nlohmann::json RateLimitsJson(const RateLimits* limits);
nlohmann::json RouteTablesJson(const route::RouteConfig& cfg, const mesh::Snapshot& snap);
// A cluster's effective load balancer (DestinationRule after Istio's
// merge; null policy: Istio's default LEAST_REQUEST).
nlohmann::json LoadBalancerJson(const route::TrafficPolicy* policy);
nlohmann::json SubsetClustersJson(const route::RouteConfig& cfg, const mesh::Snapshot& snap,
                                  const mesh::Workload& self);

}  // namespace ambit::waypoint
