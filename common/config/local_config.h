// Plain structs for the standalone local config file (ztunnel local-config
// shape, ISTIO-COMPAT §9.2) plus Ambit extensions. Values are validated by the
// loader (IPs parse, ports fit, enums known) but not interpreted: agent/state
// converts them into its domain model (common/ must not depend on agent/).
//
// Defaults: as in ztunnel's local format, empty trustDomain / serviceAccount /
// clusterId are kept empty (NOT defaulted to cluster.local / default /
// Kubernetes the way xDS input is). Set them explicitly when using real certs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ambit::config {

// "<network>/<ip>" (network may be empty) or "<network>/<ip>/<prefix>" for CIDR VIPs.
struct NetworkAddressConfig {
  std::string network;
  std::string ip;                   // validated textual IPv4/IPv6 address
  std::optional<uint8_t> prefix_len;  // only for CIDR VIPs
};

// waypoint / networkGateway: destination is either "network/IP" or
// {namespace, hostname}.
struct GatewayConfig {
  std::optional<NetworkAddressConfig> address;
  std::string hostname_namespace;
  std::string hostname;
  uint16_t hbone_mtls_port = 15008;
};

struct WeightedWaypointConfig {
  GatewayConfig destination;
  uint32_t weight = 0;
};

struct LocalityConfig {
  std::string region, zone, subzone;
};

enum class Protocol : uint8_t { kTcp, kHbone };
enum class NetworkMode : uint8_t { kStandard, kHostNetwork };
enum class HealthStatus : uint8_t { kHealthy, kUnhealthy };
enum class WorkloadType : uint8_t { kDeployment, kCronJob, kPod, kJob };
enum class AppTunnelProtocol : uint8_t { kNone, kProxy };

struct ApplicationTunnelConfig {
  AppTunnelProtocol protocol = AppTunnelProtocol::kNone;
  uint16_t port = 0;  // 0 = unset
};

using PortMap = std::map<uint16_t, uint16_t>;  // service port → target port

struct WorkloadConfig {
  int line = 0;  // where the entry starts, for later diagnostics
  std::string uid, name, ns, service_account, trust_domain;
  std::vector<std::string> workload_ips;  // validated textual IPs
  std::string hostname, network, node, cluster_id;
  Protocol protocol = Protocol::kTcp;
  NetworkMode network_mode = NetworkMode::kStandard;
  HealthStatus status = HealthStatus::kHealthy;
  std::string workload_name;
  WorkloadType workload_type = WorkloadType::kDeployment;
  std::string canonical_name, canonical_revision;
  bool native_tunnel = false;
  std::optional<ApplicationTunnelConfig> application_tunnel;
  std::vector<std::string> authorization_policies;  // "ns/name"
  LocalityConfig locality;
  uint32_t capacity = 1;
  std::optional<GatewayConfig> waypoint;
  std::optional<GatewayConfig> network_gateway;
  std::map<std::string, PortMap> services;  // "ns/hostname" → ports
  // Ambit extensions.
  std::string netns;  // e.g. /var/run/netns/<name>
  std::map<std::string, std::string> labels;
};

enum class Scope : uint8_t { kRegion, kZone, kSubzone, kNode, kCluster, kNetwork };
enum class LbMode : uint8_t { kStandard, kStrict, kFailover, kPassthrough };
enum class HealthPolicy : uint8_t { kOnlyHealthy, kAllowAll };
enum class IpFamilies : uint8_t { kAutomatic, kIpv4Only, kIpv6Only, kDual };
enum class Visibility : uint8_t { kPublic, kNamespace };

struct LoadBalancerConfig {
  std::vector<Scope> routing_preferences;
  LbMode mode = LbMode::kStandard;
  HealthPolicy health_policy = HealthPolicy::kOnlyHealthy;
};

struct ServiceConfig {
  int line = 0;
  std::string name, ns, hostname;
  std::vector<NetworkAddressConfig> vips;
  std::vector<NetworkAddressConfig> cidr_vips;
  PortMap ports;
  std::vector<std::string> subject_alt_names;
  std::optional<GatewayConfig> waypoint;
  std::vector<WeightedWaypointConfig> weighted_waypoints;
  std::optional<LoadBalancerConfig> load_balancer;
  IpFamilies ip_families = IpFamilies::kAutomatic;
  bool canonical = false;
  Visibility visibility = Visibility::kPublic;
};

enum class PolicyScope : uint8_t { kGlobal, kNamespace, kWorkloadSelector };
enum class PolicyAction : uint8_t { kAllow, kDeny };
enum class StringMatchKind : uint8_t { kExact, kPrefix, kSuffix, kPresence };

struct StringMatchConfig {
  StringMatchKind kind = StringMatchKind::kExact;
  std::string value;  // empty for presence
};

struct ServiceAccountMatchConfig {
  std::string ns, service_account;
};

struct CidrConfig {
  std::string ip;  // validated textual address
  uint8_t prefix_len = 0;  // /32 or /128 when omitted
};

struct MatchConfig {
  std::vector<StringMatchConfig> namespaces, not_namespaces;
  std::vector<StringMatchConfig> principals, not_principals;
  std::vector<ServiceAccountMatchConfig> service_accounts, not_service_accounts;
  std::vector<CidrConfig> source_ips, not_source_ips;
  std::vector<CidrConfig> destination_ips, not_destination_ips;
  std::vector<uint16_t> destination_ports, not_destination_ports;
};

using ClauseConfig = std::vector<MatchConfig>;  // OR
using RuleConfig = std::vector<ClauseConfig>;    // AND

struct PolicyConfig {
  int line = 0;
  std::string name, ns;
  PolicyScope scope = PolicyScope::kNamespace;
  PolicyAction action = PolicyAction::kAllow;
  bool dry_run = false;
  std::vector<RuleConfig> rules;  // OR
};

// A Kubernetes-style object (apiVersion/kind/metadata/spec) kept verbatim for
// the translators (AuthorizationPolicy, PeerAuthentication, ...).
struct ResourceConfig {
  std::string file;
  int line = 0;
  std::string api_version, kind, ns, name;
  std::string raw_yaml;  // the whole object re-emitted as YAML
};

struct LocalConfig {
  std::vector<WorkloadConfig> workloads;
  std::vector<ServiceConfig> services;
  std::vector<PolicyConfig> policies;
  std::vector<ResourceConfig> resources;
  // Non-fatal findings, "file:line: message" (e.g. unknown resource kinds).
  std::vector<std::string> warnings;
};

}  // namespace ambit::config
