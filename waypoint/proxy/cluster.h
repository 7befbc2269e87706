// Clusters and endpoints: where a request to a service port goes. One
// cluster per (service, port) the waypoint serves; its endpoints are the
// service's workloads that can serve the port, re-read from each new
// snapshot. Selection is per request, round robin over the healthy
// endpoints, so a few long-lived HBONE connections into the waypoint still
// spread over every backend. (Istio's default policy, LEAST_REQUEST, and the
// DestinationRule policies come with the resilience work.)
// Worker-thread only: each worker keeps its own round-robin cursors.
#pragma once

#include <cstdint>
#include <memory>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/mesh/snapshot.h"
#include "common/net/address.h"

namespace ambit::waypoint {

// One endpoint chosen for a request.
struct UpstreamEndpoint {
  const mesh::Workload* workload = nullptr;
  net::SocketAddress address;  // endpoint IP : target port (the HBONE authority)
  // SANs the endpoint's certificate may carry (service SANs + workload identity).
  std::vector<std::string> identities;
  bool hbone = true;  // TunnelProtocol::kHbone (else plain TCP to `address`)
  // Pool key: the workload and its address, so a pod IP reused by another
  // pod never shares a pooled connection with its predecessor.
  const std::string& Key() const { return key_; }
  // The pod part of the key (what Prune keeps alive).
  const std::string& LiveKey() const { return live_key_; }
  void ComputeKeys();  // after workload and address are set

 private:
  std::string key_, live_key_;
};
using EndpointPtr = std::shared_ptr<const UpstreamEndpoint>;

std::string EndpointLiveKey(const mesh::Workload& w, const net::IpAddress& ip);

// Cluster name as Envoy's waypoint prints it: inbound-vip|PORT|http|HOST.
std::string ClusterName(const mesh::Service& svc, uint16_t port);

// Takes endpoints out of picking (outlier ejection, outlier.h). Begin is
// asked once per pick with the cluster's endpoint count; false: nothing is
// excluded this time, so the common case costs one check.
class EndpointFilter {
 public:
  virtual ~EndpointFilter() = default;
  virtual bool Begin(size_t endpoints) const = 0;
  virtual bool Excluded(const UpstreamEndpoint& e) const = 0;
};

class EndpointPicker {
 public:
  // The healthy endpoints able to serve `port` of `svc` (ordered by uid).
  // With `subset_labels`, only workloads carrying all of them (a
  // DestinationRule subset).
  static std::vector<UpstreamEndpoint> Endpoints(
      const mesh::Snapshot& snap, const mesh::Service& svc, uint16_t port,
      const mesh::Workload& self, const std::map<std::string, std::string>* subset_labels = nullptr);
  // Next endpoint in round-robin order, skipping `avoid` when another exists.
  // Null: no healthy endpoint ("no healthy upstream", flag UH). Endpoint
  // lists are built once per cluster and snapshot, then reused per request.
  // Endpoints `filter` excludes are never picked.
  EndpointPtr Pick(const std::shared_ptr<const mesh::Snapshot>& snap, const mesh::Service& svc,
                   uint16_t port, const mesh::Workload& self, const std::string& avoid = {},
                   const EndpointFilter* filter = nullptr);
  // Drops the lists built from snapshots other than `current` (clusters
  // that left the config, and the old snapshots they held).
  void Forget(const std::shared_ptr<const mesh::Snapshot>& current) {
    std::erase_if(clusters_, [&](const auto& kv) { return kv.second.snapshot != current; });
  }
  // The same for a subset: `cluster` names it (its cursor and cached list),
  // `subset_labels` selects its endpoints.
  EndpointPtr PickInCluster(const std::shared_ptr<const mesh::Snapshot>& snap,
                            const std::string& cluster, const mesh::Service& svc, uint16_t port,
                            const std::map<std::string, std::string>& subset_labels,
                            const mesh::Workload& self, const std::string& avoid = {},
                            const EndpointFilter* filter = nullptr);

 private:
  struct Cluster {
    // The snapshot the list was built from, held so that its address
    // cannot be reused by a later one while the list points into it.
    std::shared_ptr<const mesh::Snapshot> snapshot;
    std::vector<EndpointPtr> endpoints;
    uint64_t cursor = 0;
  };
  EndpointPtr PickFrom(Cluster& c, const std::shared_ptr<const mesh::Snapshot>& snap,
                       const mesh::Service& svc, uint16_t port,
                       const std::map<std::string, std::string>* subset_labels,
                       const mesh::Workload& self, const std::string& avoid,
                       const EndpointFilter* filter);
  std::unordered_map<std::string, Cluster> clusters_;  // by "ns/hostname|port"
};

}  // namespace ambit::waypoint
