// WaypointState: what every worker reads per request, published by the
// control thread as one immutable snapshot (like the agent's AgentState):
// the mesh snapshot, the waypoint's own workload and identity, and its TLS
// contexts. A new certificate or config makes a new state; requests in flight
// keep the one they started with.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/identity/identity.h"
#include "common/mesh/snapshot.h"
#include "common/tls/context.h"
#include "waypoint/proxy/ratelimit_filter.h"
#include "waypoint/route/authz.h"
#include "waypoint/route/observability.h"
#include "waypoint/route/route_table.h"
#include "waypoint/route/tracing_policy.h"

namespace ambit::waypoint {

struct ResilienceTable;  // circuit_breaker.h

struct WaypointState {
  std::shared_ptr<const mesh::Snapshot> snapshot;
  mesh::Workload self;                   // the waypoint pod's workload
  std::string identity;                  // its SPIFFE identity
  std::shared_ptr<const tls::TlsContext> server_tls;  // 15008, client cert required
  std::shared_ptr<const tls::TlsContext> client_tls;  // HBONE to endpoints
  // Route tables and clusters compiled from the same config (never null
  // once published; empty when no routing resource binds anything).
  std::shared_ptr<const route::RouteConfig> routes;
  // Tracing providers and policies (Telemetry + MeshConfig); never null once
  // published.
  std::shared_ptr<const route::TracingConfig> tracing;
  // Access logging and metrics overrides (Telemetry + MeshConfig); null
  // before the first config.
  std::shared_ptr<const route::ObservabilityConfig> observability;
  // Circuit-breaker and outlier state of the clusters with a DestinationRule
  // policy (null: none); shared by all workers, kept across states.
  std::shared_ptr<const ResilienceTable> resilience;
  // Rate limiters built from routes->rate_limits (null: none); their
  // buckets outlive a state that kept the same policy.
  std::shared_ptr<const RateLimits> ratelimits;
  // AuthorizationPolicies bound to this waypoint (never null once published).
  std::shared_ptr<const route::AuthzConfig> authz;
  // Sandwich form (applicationTunnel PROXY): the agent of this pod carries
  // HBONE; upstream connections are plaintext and the agent captures them.
  bool sandwich = false;
  uint64_t generation = 0;
};

}  // namespace ambit::waypoint
