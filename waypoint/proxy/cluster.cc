#include "waypoint/proxy/cluster.h"

#include <fmt/format.h>

#include <random>
#include <set>

#include "common/mesh/lb.h"

namespace ambit::waypoint {

namespace {

bool HasLabels(const mesh::Workload& w, const std::map<std::string, std::string>& want) {
  for (const auto& [k, v] : want) {
    auto it = w.labels.find(k);
    if (it == w.labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace

std::string EndpointLiveKey(const mesh::Workload& w, const net::IpAddress& ip) {
  return w.uid + "|" + ip.ToString();
}

void UpstreamEndpoint::ComputeKeys() {
  live_key_ = workload != nullptr ? EndpointLiveKey(*workload, address.ip()) : address.ToString();
  key_ = live_key_ + "|" + std::to_string(address.port());
}

std::string ClusterName(const mesh::Service& svc, uint16_t port) {
  return fmt::format("inbound-vip|{}|http|{}", port, svc.hostname);
}

std::vector<UpstreamEndpoint> EndpointPicker::Endpoints(
    const mesh::Snapshot& snap, const mesh::Service& svc, uint16_t port,
    const mesh::Workload& self, const std::map<std::string, std::string>* subset_labels) {
  std::vector<UpstreamEndpoint> out;
  const bool only_healthy = svc.health_policy() == mesh::HealthPolicy::kOnlyHealthy;
  for (const auto& [uid, ep] : svc.endpoints) {
    const mesh::Workload* w = snap.FindWorkload(uid);
    if (w == nullptr || w->uid == self.uid) continue;  // never back into ourselves
    if (only_healthy && (ep.status != mesh::WorkloadStatus::kHealthy ||
                         w->status != mesh::WorkloadStatus::kHealthy)) {
      continue;
    }
    if (w->network != self.network) continue;  // cross-network: not supported yet
    if (subset_labels != nullptr && !HasLabels(*w, *subset_labels)) continue;
    auto target = mesh::TranslatePort(svc, ep, *w, port, mesh::LbPurpose::kStandard);
    if (!target) continue;
    const net::IpAddress any = w->addresses.empty() ? net::IpAddress() : w->addresses.front();
    auto ip = mesh::SelectIp(*w, &svc, any);
    if (!ip) continue;
    UpstreamEndpoint e;
    e.workload = w;
    e.address = net::SocketAddress(*ip, *target);
    e.identities = svc.subject_alt_names;
    e.identities.push_back(w->Identity());
    e.hbone = w->protocol == mesh::TunnelProtocol::kHbone;
    e.ComputeKeys();
    out.push_back(std::move(e));
  }
  return out;
}

EndpointPicker::EndpointPicker()
    : rng_(std::random_device{}() | (uint64_t{std::random_device{}()} << 32) | 1) {}

EndpointPicker::~EndpointPicker() = default;

EndpointPtr EndpointPicker::Pick(const std::shared_ptr<const mesh::Snapshot>& snap,
                                 const mesh::Service& svc, uint16_t port,
                                 const mesh::Workload& self, const PickContext& ctx) {
  std::string key = svc.Key();
  key.append("|").append(std::to_string(port));
  return PickFrom(clusters_[key], snap, svc, port, nullptr, self, ctx);
}

EndpointPtr EndpointPicker::PickInCluster(const std::shared_ptr<const mesh::Snapshot>& snap,
                                          const std::string& cluster, const mesh::Service& svc,
                                          uint16_t port,
                                          const std::map<std::string, std::string>& subset_labels,
                                          const mesh::Workload& self, const PickContext& ctx) {
  return PickFrom(clusters_[cluster], snap, svc, port, subset_labels.empty() ? nullptr
                                                                            : &subset_labels,
                  self, ctx);
}

void EndpointPicker::Forget(const std::shared_ptr<const mesh::Snapshot>& current) {
  std::erase_if(clusters_, [&](const auto& kv) { return kv.second.snapshot != current; });
  // Active counts nobody holds any more go; first-seen times stay while the
  // pod is an endpoint of some service (slow start must not restart for
  // every endpoint on each new snapshot).
  std::erase_if(active_, [](const auto& kv) { return kv.second.use_count() == 1; });
  if (first_seen_.empty() || current == nullptr) return;
  std::set<std::string> live;
  for (const auto& [key, svc] : current->services()) {
    for (const auto& [uid, ep] : svc.endpoints) {
      const mesh::Workload* w = current->FindWorkload(uid);
      if (w == nullptr) continue;
      for (const auto& ip : w->addresses) live.insert(EndpointLiveKey(*w, ip));
    }
  }
  std::erase_if(first_seen_, [&](const auto& kv) { return !live.contains(kv.first); });
}

}  // namespace ambit::waypoint
