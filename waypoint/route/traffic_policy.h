// DestinationRule `trafficPolicy` as the waypoint applies it to one cluster
// (a service port, or a subset of it): load balancing, connection-pool
// limits (circuit breaking) and outlier detection. Compiled by
// compile_traffic_policy.cc (structure and Istio's merge order),
// compile_lb_policy.cc (loadBalancer) and compile_cluster_limits.cc
// (connectionPool, outlierDetection); read by the workers from
// RouteConfig::policies. Immutable after Compile.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ambit::waypoint::route {

// trafficPolicy.loadBalancer. Unset (no policy): LEAST_REQUEST, Istio's
// default.
struct LoadBalancerPolicy {
  enum class Kind : uint8_t {
    kLeastRequest,
    kRoundRobin,
    kRandom,
    kPassthrough,
    kRingHash,
    kMaglev,
  };
  Kind kind = Kind::kLeastRequest;
};

// trafficPolicy.connectionPool (circuit breaking).
struct ConnectionPoolPolicy {};

// trafficPolicy.outlierDetection.
struct OutlierPolicy {};

// One cluster's effective policy. A field left unset keeps Envoy's default
// as Istio configures it.
struct TrafficPolicy {
  std::optional<LoadBalancerPolicy> load_balancer;
  std::optional<ConnectionPoolPolicy> connection_pool;
  std::optional<OutlierPolicy> outlier_detection;
  std::string source;  // "DestinationRule ns/name" (file:line of its trafficPolicy)
};

}  // namespace ambit::waypoint::route
