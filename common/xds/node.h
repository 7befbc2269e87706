// The xDS Node this agent announces (ISTIO-COMPAT §5.1): id
// "ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local" and a metadata Struct with
// NAME, NAMESPACE, INSTANCE_IPS, NODE_NAME, CLUSTER_ID, every ISTIO_META_<K>
// (as <K>) and every ISTIO_METAJSON_<K> (parsed JSON, as <K>).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "proto/envoy_core.pb.h"

namespace ambit::xds {

struct NodeInfo {
  std::string instance_ip;                            // INSTANCE_IP; empty → "1.1.1.1" in the id
  std::vector<std::string> instance_ips;              // INSTANCE_IPS (comma list) or {INSTANCE_IP}
  std::string pod_name;                               // POD_NAME
  std::string pod_namespace;                          // POD_NAMESPACE
  std::string node_name;                              // NODE_NAME
  std::string cluster_id = "Kubernetes";              // ISTIO_META_CLUSTER_ID, else CLUSTER_ID
  std::map<std::string, std::string> proxy_metadata;  // ISTIO_META_<K>=v → K: "v"
  std::map<std::string, std::string> metadata_json;   // ISTIO_METAJSON_<K>=json → K: json
};

// Reads the variables listed above from `env` (name → value).
NodeInfo NodeInfoFromEnv(const std::map<std::string, std::string>& env);
// Same, from the process environment.
NodeInfo NodeInfoFromProcessEnv();
// The process environment as a name → value map.
std::map<std::string, std::string> ProcessEnvironment();

std::string NodeId(const NodeInfo& info);
// Error if an ISTIO_METAJSON_ value is not valid JSON.
StatusOr<::envoy::config::core::v3::Node> BuildNode(const NodeInfo& info);

}  // namespace ambit::xds
