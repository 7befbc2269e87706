// Domain model of workloads and services (our own structs, not protos):
// ISTIO-COMPAT §5.2 fields that matter to the data path, plus Ambit's
// `netns` and `labels`. Filled by mesh/xds_adapters (from xDS) or by
// FromLocalConfig (standalone file).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/mesh/app_protocol.h"
#include "common/net/address.h"

namespace ambit::mesh {

using net::IpAddress;

inline constexpr uint16_t kHbonePort = 15008;
// Ports the agent listens on inside a pod; traffic must never be sent to them.
inline bool IsIllegalTargetPort(uint16_t port) {
  return port == 15001 || port == 15006 || port == 15008;
}

enum class TunnelProtocol : uint8_t { kNone, kHbone };  // kNone = plain TCP
enum class WorkloadStatus : uint8_t { kHealthy, kUnhealthy };
enum class WorkloadType : uint8_t { kDeployment, kCronJob, kPod, kJob };
enum class NetworkMode : uint8_t { kStandard, kHostNetwork };
enum class AppTunnelProtocol : uint8_t { kNone, kProxy };
enum class IpFamilies : uint8_t { kAutomatic, kIpv4Only, kIpv6Only, kDual };
enum class Visibility : uint8_t { kPublic, kNamespace };

struct Locality {
  std::string region, zone, subzone;
};

// An address on a network; prefix_len < full length makes it a CIDR VIP.
struct NetworkAddress {
  std::string network;
  IpAddress ip;
  uint8_t prefix_len = 32;  // 32 or 128 = single host

  bool IsCidr() const { return prefix_len < (ip.is_v4() ? 32 : 128); }
  friend bool operator==(const NetworkAddress&, const NetworkAddress&) = default;
};

struct NamespacedHostname {
  std::string ns, hostname;
  std::string Key() const { return ns + "/" + hostname; }
  friend bool operator==(const NamespacedHostname&, const NamespacedHostname&) = default;
};

// Waypoint or network gateway reference.
struct GatewayAddress {
  std::variant<NamespacedHostname, NetworkAddress> destination;
  uint16_t hbone_mtls_port = kHbonePort;
};

struct ApplicationTunnel {
  AppTunnelProtocol protocol = AppTunnelProtocol::kNone;
  uint16_t port = 0;  // 0 = keep the target port
};

using PortMap = std::map<uint16_t, uint16_t>;  // service port → target port

struct Workload {
  std::string uid, name, ns;
  std::vector<IpAddress> addresses;
  std::string hostname, network;
  TunnelProtocol protocol = TunnelProtocol::kNone;
  std::string trust_domain, service_account;
  std::optional<GatewayAddress> waypoint, network_gateway;
  std::string node, canonical_name, canonical_revision;
  WorkloadType workload_type = WorkloadType::kDeployment;
  std::string workload_name;
  bool native_tunnel = false;
  std::optional<ApplicationTunnel> application_tunnel;
  std::map<std::string, PortMap> services;  // "ns/hostname" → ports
  std::vector<std::string> authorization_policies;  // "ns/name"
  WorkloadStatus status = WorkloadStatus::kHealthy;
  std::string cluster_id;
  Locality locality;
  NetworkMode network_mode = NetworkMode::kStandard;
  uint32_t capacity = 1;
  // Ambit extensions.
  std::string netns;
  std::map<std::string, std::string> labels;

  // spiffe://<td>/ns/<ns>/sa/<sa>
  std::string Identity() const {
    return "spiffe://" + trust_domain + "/ns/" + ns + "/sa/" + service_account;
  }
  bool HasAddress(const IpAddress& ip) const {
    for (const IpAddress& a : addresses) {
      if (a == ip) return true;
    }
    return false;
  }
};

struct WeightedWaypoint {
  GatewayAddress destination;
  uint32_t weight = 0;  // 0 = never picked
};

enum class LbScope : uint8_t { kRegion, kZone, kSubzone, kNode, kCluster, kNetwork };
enum class LbMode : uint8_t { kStandard, kStrict, kFailover, kPassthrough };
enum class HealthPolicy : uint8_t { kOnlyHealthy, kAllowAll };

struct LoadBalancing {
  std::vector<LbScope> routing_preference;
  LbMode mode = LbMode::kStandard;
  HealthPolicy health_policy = HealthPolicy::kOnlyHealthy;
};

// A workload's membership in a service (derived from Workload::services).
struct Endpoint {
  std::string workload_uid;
  PortMap ports;
  WorkloadStatus status = WorkloadStatus::kHealthy;
};

struct Service {
  std::string name, ns, hostname;
  std::vector<NetworkAddress> vips;  // host VIPs and CIDR VIPs
  PortMap ports;                     // target 0 = named port: endpoint decides
  // Service port → application protocol (absent = kUnknown): xDS
  // Port.app_protocol, or istiod's rules over the standalone YAML's
  // appProtocol / port name (app_protocol.h).
  std::map<uint16_t, AppProtocol> port_protocols;
  // Service port → Kubernetes port name (standalone YAML only; xDS has none).
  std::map<uint16_t, std::string> port_names;
  std::vector<std::string> subject_alt_names;
  std::optional<GatewayAddress> waypoint;
  std::vector<WeightedWaypoint> weighted_waypoints;
  std::optional<LoadBalancing> load_balancing;
  IpFamilies ip_families = IpFamilies::kAutomatic;
  bool canonical = false;
  Visibility visibility = Visibility::kPublic;
  // Filled by the snapshot from workloads (by uid); ignored on input.
  std::map<std::string, Endpoint> endpoints;

  std::string Key() const { return ns + "/" + hostname; }
  HealthPolicy health_policy() const {
    return load_balancing ? load_balancing->health_policy : HealthPolicy::kOnlyHealthy;
  }
  bool IsPassthrough() const {
    return load_balancing && load_balancing->mode == LbMode::kPassthrough;
  }
  AppProtocol PortProtocol(uint16_t service_port) const {
    auto it = port_protocols.find(service_port);
    return it == port_protocols.end() ? AppProtocol::kUnknown : it->second;
  }
};

}  // namespace ambit::mesh
