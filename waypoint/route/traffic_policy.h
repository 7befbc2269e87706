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
#include <utility>
#include <vector>

namespace ambit::waypoint::route {

// trafficPolicy.loadBalancer.localityLbSetting (Istio applies either
// `distribute` or failover, never both).
struct LocalitySetting {
  // distribute[]: for a waypoint whose locality matches `from` ("region/
  // zone/subzone", "*" wildcards), endpoints matching a `to` key get that
  // share (percent) of the requests; endpoints matching no key get none.
  struct Distribute {
    std::string from;
    std::vector<std::pair<std::string, uint32_t>> to;  // in written order
    bool operator==(const Distribute&) const = default;
  };
  // failover[]: from region → to region (the priority after the local region).
  struct Failover {
    std::string from, to;
    bool operator==(const Failover&) const = default;
  };
  std::vector<Distribute> distribute;
  std::vector<Failover> failover;
  // failoverPriority[]: labels ("key" or "key=value") ranking endpoints by how
  // many leading labels they share with the waypoint.
  std::vector<std::string> failover_priority;
  bool enabled = true;
  bool operator==(const LocalitySetting&) const = default;
};

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
  // consistentHash key: what is hashed per request.
  enum class HashKey : uint8_t { kNone, kHeader, kCookie, kSourceIp, kQueryParameter };
  Kind kind = Kind::kLeastRequest;
  HashKey hash_key = HashKey::kNone;
  std::string hash_name;  // header (lower case), cookie or query parameter name
  std::string cookie_path;
  // httpCookie.ttl: when set and the cookie is absent, the waypoint issues it.
  std::optional<std::chrono::seconds> cookie_ttl;
  uint64_t ring_size = 1024;     // ringHash.minimumRingSize (Envoy's default)
  uint64_t table_size = 65537;   // maglev.tableSize (prime)
  std::optional<LocalitySetting> locality;
  std::chrono::milliseconds warmup{0};  // warmupDurationSecs (slow start)
  bool operator==(const LoadBalancerPolicy&) const = default;
  bool Hashed() const { return kind == Kind::kRingHash || kind == Kind::kMaglev; }
};

const char* KindName(LoadBalancerPolicy::Kind k);
const char* HashKeyName(LoadBalancerPolicy::HashKey k);

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
  // http.maxConcurrentStreams: streams per upstream HTTP/2 session; a
  // request finding every session full opens another (0: the pool's 100).
  uint32_t max_concurrent_streams = 0;
  // http.idleTimeout: an upstream HTTP/1.1 connection or h2 session with no
  // request in flight for this long is closed (unset: the waypoint's pool
  // default). tcp.idleTimeout: a TCP-relayed connection with no bytes either
  // way for this long is closed (unset: 1h, Envoy's tcp_proxy default).
  std::optional<std::chrono::nanoseconds> http_idle_timeout;
  std::optional<std::chrono::nanoseconds> tcp_idle_timeout;
  // http.h2UpgradePolicy: kUpgrade sends HTTP/1.1 downstream requests
  // upstream as HTTP/2 (h2c prior knowledge); kDefault / kDoNotUpgrade keep
  // HTTP/1.1. http.useClientProtocol: true follows the downstream protocol
  // (and wins over h2UpgradePolicy, as in istiod).
  enum class H2Upgrade : uint8_t { kDefault, kDoNotUpgrade, kUpgrade };
  H2Upgrade h2_upgrade = H2Upgrade::kDefault;
  bool use_client_protocol = false;
  bool operator==(const ConnectionPoolPolicy&) const = default;
  // Whether an HTTP/1.1 downstream request goes upstream as HTTP/2.
  bool UpgradeHttp1() const { return h2_upgrade == H2Upgrade::kUpgrade && !use_client_protocol; }
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
  // outlierDetection was written (even if not compiled): Istio applies
  // locality failover only then, since without it Envoy would never see
  // the local endpoints fail.
  bool outlier_written = false;
  std::string source;  // "DestinationRule ns/name" (file:line of its trafficPolicy)
};

}  // namespace ambit::waypoint::route
