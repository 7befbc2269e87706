// Workload API protos → our domain model (agent/state), ISTIO-COMPAT §5.2/§5.3.
// Every function validates untrusted control-plane input and returns an
// InvalidArgument naming the offending field instead of crashing.
//
// Defaults applied like ztunnel: empty trust_domain → "cluster.local", empty
// service_account → "default", empty cluster_id → "Kubernetes", capacity
// unset → 1, GatewayAddress hbone_mtls_port 0 → 15008.
// Rejected: addresses that are not 4 or 16 bytes, tunnel_protocol
// LEGACY_ISTIO_MTLS or unknown, unknown enum values that steer traffic or
// policy, ports above 65535, a GatewayAddress or StringMatch with nothing set.
#pragma once

#include <string_view>
#include <variant>

#include "common/mesh/policy.h"
#include "common/mesh/types.h"
#include "common/base/status.h"
#include "proto/authorization.pb.h"
#include "proto/workload.pb.h"

namespace ambit::xds_adapters {

inline constexpr std::string_view kDefaultTrustDomain = "cluster.local";
inline constexpr std::string_view kDefaultServiceAccount = "default";
inline constexpr std::string_view kDefaultClusterId = "Kubernetes";

StatusOr<mesh::Workload> ConvertWorkload(const ::istio::workload::Workload& w);
StatusOr<mesh::Service> ConvertService(const ::istio::workload::Service& s);
// Address{workload|service}; error if neither is set.
StatusOr<std::variant<mesh::Workload, mesh::Service>> ConvertAddress(
    const ::istio::workload::Address& a);
StatusOr<mesh::Policy> ConvertAuthorization(const ::istio::security::Authorization& a);

// 4 bytes → IPv4, 16 bytes → IPv6; anything else is an error naming `what`.
StatusOr<net::IpAddress> IpFromBytes(std::string_view bytes, std::string_view what);

}  // namespace ambit::xds_adapters
