// Plain structs for the standalone local config file (ztunnel local-config
// shape, ISTIO-COMPAT §9.2) plus Ambit extensions. Values are validated by the
// loader (IPs parse, ports fit, enums known) but not interpreted: agent/state
// converts them into its domain model (common/ must not depend on agent/).
//
// Defaults: as in ztunnel's local format, empty trustDomain / serviceAccount /
// clusterId are kept empty (NOT defaulted to cluster.local / default /
// Kubernetes the way xDS input is). Set them explicitly when using real certs.
#pragma once

#include <yaml-cpp/yaml.h>

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
using LabelMap = std::map<std::string, std::string>;

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
  LabelMap labels;
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

// What the Kubernetes-style port forms add to a service port (ports as a
// list of {port, targetPort, appProtocol, name}, or {port: {...}}).
struct ServicePortDetail {
  std::string name;                         // port name ("" = none)
  std::optional<std::string> app_protocol;  // absent = not given
};

struct ServiceConfig {
  int line = 0;
  std::string name, ns, hostname;
  std::vector<NetworkAddressConfig> vips;
  std::vector<NetworkAddressConfig> cidr_vips;
  PortMap ports;
  std::map<uint16_t, ServicePortDetail> port_details;  // only ports that have some
  LabelMap labels;  // istio.io/use-waypoint, istio.io/use-waypoint-namespace, ...
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
  // The parsed object with the file's line marks (YAML::Node::Mark), so a
  // translator can point at the exact field; read on the control thread only.
  YAML::Node node;
};

// namespaces[]: {name, labels} — the namespace-level istio.io/use-waypoint.
struct NamespaceConfig {
  int line = 0;
  std::string name;
  LabelMap labels;
};

// A Gateway API Gateway (extra document, `resources:` entry, or `gateways:`
// entry), as far as the waypoint binding needs it. The object itself also
// stays in `resources` (verbatim) when it came as a resource.
enum class AllowedNamespaces : uint8_t { kSame, kAll, kSelector };
struct GatewayDeclConfig {
  std::string file;
  int line = 0;
  std::string name, ns;  // ns defaults to "default", as kubectl does
  std::string class_name;
  LabelMap labels;
  // allowedRoutes.namespaces of the HBONE/15008 listener (Same when absent).
  AllowedNamespaces allowed = AllowedNamespaces::kSame;
  LabelMap allowed_selector;  // matchLabels, for kSelector
};

struct LocalConfig {
  std::vector<WorkloadConfig> workloads;
  std::vector<ServiceConfig> services;
  std::vector<NamespaceConfig> namespaces;
  std::vector<GatewayDeclConfig> gateways;
  std::vector<PolicyConfig> policies;
  std::vector<ResourceConfig> resources;
  // Non-fatal findings, "file:line: message" (e.g. unknown resource kinds).
  std::vector<std::string> warnings;
};

}  // namespace ambit::config
