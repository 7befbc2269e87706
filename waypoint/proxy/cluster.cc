#include "waypoint/proxy/cluster.h"

#include <fmt/format.h>

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

EndpointPtr EndpointPicker::Pick(const std::shared_ptr<const mesh::Snapshot>& snap,
                                 const mesh::Service& svc, uint16_t port,
                                 const mesh::Workload& self, const std::string& avoid,
                                 const EndpointFilter* filter) {
  std::string key = svc.Key();
  key.append("|").append(std::to_string(port));
  return PickFrom(clusters_[key], snap, svc, port, nullptr, self, avoid, filter);
}

EndpointPtr EndpointPicker::PickInCluster(const std::shared_ptr<const mesh::Snapshot>& snap,
                                          const std::string& cluster, const mesh::Service& svc,
                                          uint16_t port,
                                          const std::map<std::string, std::string>& subset_labels,
                                          const mesh::Workload& self, const std::string& avoid,
                                          const EndpointFilter* filter) {
  return PickFrom(clusters_[cluster], snap, svc, port, subset_labels.empty() ? nullptr
                                                                            : &subset_labels,
                  self, avoid, filter);
}

EndpointPtr EndpointPicker::PickFrom(Cluster& c, const std::shared_ptr<const mesh::Snapshot>& snap,
                                     const mesh::Service& svc, uint16_t port,
                                     const std::map<std::string, std::string>* subset_labels,
                                     const mesh::Workload& self, const std::string& avoid,
                                     const EndpointFilter* filter) {
  if (c.snapshot != snap) {
    c.endpoints.clear();
    for (auto& e : Endpoints(*snap, svc, port, self, subset_labels)) {
      c.endpoints.push_back(std::make_shared<const UpstreamEndpoint>(std::move(e)));
    }
    c.snapshot = snap;
  }
  const auto& eps = c.endpoints;
  if (eps.empty()) return nullptr;
  const bool filtering = filter != nullptr && filter->Begin(eps.size());
  const EndpointPtr* fallback = nullptr;  // `avoid` itself, when nothing else is left
  for (size_t tries = 0; tries < eps.size(); ++tries) {
    const EndpointPtr& e = eps[c.cursor++ % eps.size()];
    if (filtering && filter->Excluded(*e)) continue;
    if (avoid.empty() || e->Key() != avoid) return e;
    if (fallback == nullptr) fallback = &e;
  }
  return fallback != nullptr ? *fallback : nullptr;
}

}  // namespace ambit::waypoint
