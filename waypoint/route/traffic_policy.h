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

// Istio's "no limit" for the circuit-breaker thresholds it leaves unset
// (2^32-1, what istiod writes into Envoy's circuit breakers).
inline constexpr uint32_t kUnlimited = 4294967295u;

// trafficPolicy.connectionPool (circuit breaking), per cluster across all
// workers. Overflow answers 503 with flag UO at once.
struct ConnectionPoolPolicy {
  // tcp.maxConnections: upstream HTTP/1.1 connections busy with a request
  // (Envoy's max_connections; HTTP/2 multiplexes on pooled sessions).
  uint32_t max_connections = kUnlimited;
  // tcp.connectTimeout; unset: the waypoint's --connect-timeout.
  std::optional<std::chrono::nanoseconds> connect_timeout;
  // http.http1MaxPendingRequests: requests waiting for a connection slot
  // (max_pending_requests).
  uint32_t max_pending_requests = kUnlimited;
  // http.http2MaxRequests: requests in flight to the cluster, any protocol
  // (max_requests).
  uint32_t max_requests = kUnlimited;
  // http.maxRequestsPerConnection: 0 = unlimited; 1 disables keep-alive.
  uint32_t max_requests_per_connection = 0;
  // http.maxRetries: retries in flight to the cluster (max_retries).
  uint32_t max_retries = kUnlimited;
};

// trafficPolicy.outlierDetection: endpoints answering errors are ejected
// (no new requests) for baseEjectionTime × times ejected.
struct OutlierPolicy {
  uint32_t consecutive_5xx = 5;               // 0 disables
  uint32_t consecutive_gateway_errors = 0;    // 502/503/504; 0 disables
  // Connect failures, resets and timeouts; counted on their own only with
  // split_local_origin (else they count as 5xx / gateway errors).
  uint32_t consecutive_local_origin = 5;
  bool split_local_origin = false;
  std::chrono::nanoseconds interval = std::chrono::seconds(10);
  std::chrono::nanoseconds base_ejection_time = std::chrono::seconds(30);
  // Envoy's max_ejection_time (not an Istio field): the cap of the growth.
  std::chrono::nanoseconds max_ejection_time = std::chrono::seconds(300);
  uint32_t max_ejection_percent = 10;
  // Below this share of non-ejected endpoints, ejection is ignored (panic;
  // Envoy's healthy_panic_threshold). Istio's default 0 never panics.
  uint32_t min_health_percent = 0;
  bool operator==(const OutlierPolicy&) const = default;
};

// One cluster's effective policy. A field left unset keeps Envoy's default
// as Istio configures it.
struct TrafficPolicy {
  std::optional<LoadBalancerPolicy> load_balancer;
  std::optional<ConnectionPoolPolicy> connection_pool;
  std::optional<OutlierPolicy> outlier_detection;
  std::string source;  // "DestinationRule ns/name" (file:line of its trafficPolicy)
};

}  // namespace ambit::waypoint::route
