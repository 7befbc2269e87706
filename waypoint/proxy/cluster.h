// Clusters and endpoints: where a request to a service port goes. One
// cluster per (service, port) the waypoint serves, and per subset; its
// endpoints are the service's workloads that can serve the port, re-read
// from each new snapshot. Selection is per request with the cluster's
// DestinationRule load balancer (lb_pick.cc: LEAST_REQUEST by default,
// ROUND_ROBIN, RANDOM, ring hash / Maglev over lb_hash.h), after the
// locality priorities and weights of lb_locality.h, so a few long-lived
// HBONE connections into the waypoint still spread over every backend.
// Worker-thread only: each worker keeps its own cursors, rings and
// active-request counts.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mesh/snapshot.h"
#include "common/net/address.h"
#include "waypoint/proxy/lb_hash.h"
#include "waypoint/proxy/lb_locality.h"
#include "waypoint/route/traffic_policy.h"

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

// What one pick needs beyond the cluster: its DestinationRule policy, the
// request's consistent-hash key, and an endpoint to skip.
struct PickContext {
  const route::TrafficPolicy* policy = nullptr;  // null: LEAST_REQUEST, mesh locality default
  std::optional<uint64_t> hash;  // consistentHash key (none: a random endpoint)
  std::string_view avoid;        // UpstreamEndpoint::Key() to skip when another exists
  // Endpoints it excludes (outlier ejection) are never picked.
  const EndpointFilter* filter = nullptr;
  // Locality priorities to skip while another has a usable endpoint (a
  // retry under retryRemoteLocalities: Envoy's previous_priorities).
  const std::vector<uint32_t>* exclude_priorities = nullptr;
};

class EndpointPicker {
 public:
  EndpointPicker();
  ~EndpointPicker();
  // The healthy endpoints able to serve `port` of `svc` (ordered by uid).
  // With `subset_labels`, only workloads carrying all of them (a
  // DestinationRule subset).
  static std::vector<UpstreamEndpoint> Endpoints(
      const mesh::Snapshot& snap, const mesh::Service& svc, uint16_t port,
      const mesh::Workload& self, const std::map<std::string, std::string>* subset_labels = nullptr);
  // An endpoint by the cluster's policy. Null: no healthy endpoint ("no
  // healthy upstream", flag UH). Endpoint lists (and rings, locality
  // levels) are built once per cluster, snapshot and policy, then reused.
  // While the returned pointer (or a copy) lives, the endpoint counts one
  // active request on this worker (LEAST_REQUEST reads the counts).
  EndpointPtr Pick(const std::shared_ptr<const mesh::Snapshot>& snap, const mesh::Service& svc,
                   uint16_t port, const mesh::Workload& self, const PickContext& ctx = {});
  // The same for a named cluster (a route's, maybe a subset):
  // `subset_labels` selects its endpoints.
  EndpointPtr PickInCluster(const std::shared_ptr<const mesh::Snapshot>& snap,
                            const std::string& cluster, const mesh::Service& svc, uint16_t port,
                            const std::map<std::string, std::string>& subset_labels,
                            const mesh::Workload& self, const PickContext& ctx = {});
  // Drops the lists built from snapshots other than `current` (clusters
  // that left the config, and the old snapshots they held).
  void Forget(const std::shared_ptr<const mesh::Snapshot>& current);

  // Active requests on this worker for an endpoint key (tests, dumps).
  uint32_t Active(const std::string& key) const;
  // The locality priority the last pick came from (0: the waypoint's own;
  // more: failover, counted by the caller).
  uint32_t LastPriority() const { return last_priority_; }

 private:
  struct Level {
    std::vector<lb::Group> groups;
    std::vector<uint64_t> cursors;  // round robin, one per group
    uint32_t priority = 0;          // lb::Group::priority
    std::vector<uint32_t> members;  // every group's, in order (what the hash tables index)
    std::shared_ptr<const lb::RingHash> ring;  // built on the level's first hashed pick
    std::shared_ptr<const lb::Maglev> maglev;
  };
  struct Cluster {
    // The snapshot the list was built from, held so that its address
    // cannot be reused by a later one while the list points into it.
    std::shared_ptr<const mesh::Snapshot> snapshot;
    std::optional<route::LoadBalancerPolicy> lb;  // the policy the levels were built for
    bool failover = false;
    std::vector<EndpointPtr> endpoints;
    std::vector<Level> levels;  // locality priorities, preferred first
  };
  EndpointPtr PickFrom(Cluster& c, const std::shared_ptr<const mesh::Snapshot>& snap,
                       const mesh::Service& svc, uint16_t port,
                       const std::map<std::string, std::string>* subset_labels,
                       const mesh::Workload& self, const PickContext& ctx);
  void Build(Cluster& c, const mesh::Workload& self, const PickContext& ctx);
  EndpointPtr Choose(Cluster& c, Level& level, const std::vector<uint32_t>& usable,
                     const PickContext& ctx);
  EndpointPtr Lease(const EndpointPtr& e);
  double WarmupFactor(const std::string& key, std::chrono::milliseconds window) const;
  uint64_t Random() {
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 0x2545F4914F6CDD1DULL;
  }

  std::unordered_map<std::string, Cluster> clusters_;  // by "ns/hostname|port" or cluster name
  // Per endpoint key: requests in flight through this worker (held by the
  // leases Pick returns); per pod (LiveKey) when this worker first saw it
  // (slow start).
  std::unordered_map<std::string, std::shared_ptr<uint32_t>> active_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> first_seen_;
  uint64_t rng_;
  uint32_t last_priority_ = 0;
  std::vector<uint32_t> usable_, in_group_;  // per-pick scratch
  std::vector<uint8_t> usable_mask_;
};

}  // namespace ambit::waypoint
