#include "waypoint/proxy/cluster.h"

#include <fmt/format.h>

#include "common/mesh/lb.h"

namespace ambit::waypoint {

std::string EndpointLiveKey(const mesh::Workload& w, const net::IpAddress& ip) {
  return w.uid + "|" + ip.ToString();
}

std::string UpstreamEndpoint::Key() const {
  return LiveKey() + "|" + std::to_string(address.port());
}

std::string UpstreamEndpoint::LiveKey() const {
  return workload != nullptr ? EndpointLiveKey(*workload, address.ip()) : address.ToString();
}

std::string ClusterName(const mesh::Service& svc, uint16_t port) {
  return fmt::format("inbound-vip|{}|http|{}", port, svc.hostname);
}

std::vector<UpstreamEndpoint> EndpointPicker::Endpoints(const mesh::Snapshot& snap,
                                                        const mesh::Service& svc, uint16_t port,
                                                        const mesh::Workload& self) {
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
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<UpstreamEndpoint> EndpointPicker::Pick(const mesh::Snapshot& snap,
                                                     const mesh::Service& svc, uint16_t port,
                                                     const mesh::Workload& self,
                                                     const std::string& avoid) {
  std::vector<UpstreamEndpoint> eps = Endpoints(snap, svc, port, self);
  if (eps.empty()) return std::nullopt;
  uint64_t& cursor = cursors_[ClusterName(svc, port)];
  for (size_t tries = 0; tries < eps.size(); ++tries) {
    UpstreamEndpoint& e = eps[cursor++ % eps.size()];
    if (eps.size() == 1 || avoid.empty() || e.Key() != avoid) return std::move(e);
  }
  return std::move(eps.front());
}

}  // namespace ambit::waypoint
