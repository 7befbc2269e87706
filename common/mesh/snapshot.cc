#include "common/mesh/snapshot.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

namespace ambit::mesh {

// ---------------------------------------------------------------- store

Status WorkloadStore::UpsertWorkload(Workload w) {
  if (w.uid.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("workload {}/{} has no uid", w.ns, w.name));
  }
  std::string uid = w.uid;
  workloads_.insert_or_assign(std::move(uid), std::move(w));
  return absl::OkStatus();
}

Status WorkloadStore::UpsertService(Service s) {
  if (s.hostname.empty() || s.ns.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("service '{}' needs a namespace and a hostname", s.name));
  }
  s.endpoints.clear();
  std::string key = s.Key();
  auto it = services_.find(key);
  uint64_t seq = it == services_.end() ? next_seq_++ : it->second.first;
  services_.insert_or_assign(std::move(key), std::make_pair(seq, std::move(s)));
  return absl::OkStatus();
}

Status WorkloadStore::UpsertPolicy(Policy p) {
  if (p.name.empty() || p.ns.empty()) {
    return absl::InvalidArgumentError("policy needs a namespace and a name");
  }
  std::string key = p.Key();
  policies_.insert_or_assign(std::move(key), std::move(p));
  return absl::OkStatus();
}

bool WorkloadStore::RemoveWorkload(std::string_view uid) {
  auto it = workloads_.find(uid);
  if (it == workloads_.end()) return false;
  workloads_.erase(it);
  return true;
}

bool WorkloadStore::RemoveService(std::string_view key) {
  auto it = services_.find(key);
  if (it == services_.end()) return false;
  services_.erase(it);
  return true;
}

bool WorkloadStore::RemovePolicy(std::string_view key) {
  auto it = policies_.find(key);
  if (it == policies_.end()) return false;
  policies_.erase(it);
  return true;
}

void WorkloadStore::Clear() {
  workloads_.clear();
  services_.clear();
  policies_.clear();
}

std::shared_ptr<const Snapshot> WorkloadStore::Build() {
  auto snap = std::shared_ptr<Snapshot>(new Snapshot());
  snap->generation_ = ++generation_;
  snap->workloads_ = workloads_;
  for (const auto& [key, entry] : services_) {
    snap->services_.emplace(key, entry.second);
    snap->service_seq_.emplace(key, entry.first);
  }
  snap->policies_ = policies_;
  snap->Index(node_name_);
  return snap;
}

// ---------------------------------------------------------------- snapshot

namespace {

// Higher is better: real pods over other kinds, HBONE over plain TCP.
int WorkloadPreference(const Workload& w) {
  int score = 0;
  if (w.uid.find("//Pod/") != std::string::npos) score += 2;
  if (w.protocol == TunnelProtocol::kHbone) score += 1;
  return score;
}

}  // namespace

void Snapshot::Index(const std::string& node_name) {
  for (const auto& [uid, w] : workloads_) {
    if (w.network_mode != NetworkMode::kHostNetwork) {
      for (const IpAddress& ip : w.addresses) by_ip_[{w.network, ip}].push_back(&w);
    }
    if (node_name.empty() || w.node == node_name) {
      node_local_[{w.ns, w.service_account}].push_back(&w);
    }
    for (const auto& [svc_key, ports] : w.services) {
      Endpoint ep{w.uid, ports, w.status};
      auto sit = services_.find(svc_key);
      if (sit == services_.end()) {
        staged_[svc_key].push_back(std::move(ep));
        continue;
      }
      Service& svc = sit->second;
      if (ep.status == WorkloadStatus::kUnhealthy &&
          svc.health_policy() != HealthPolicy::kAllowAll) {
        continue;
      }
      svc.endpoints.insert_or_assign(w.uid, std::move(ep));
    }
  }
  for (auto& [ip, list] : by_ip_) {
    std::stable_sort(list.begin(), list.end(), [](const Workload* a, const Workload* b) {
      return WorkloadPreference(*a) > WorkloadPreference(*b);
    });
  }
  // Services in first-seen order so "first" ranks are stable.
  std::vector<const Service*> ordered;
  for (const auto& [key, svc] : services_) ordered.push_back(&svc);
  std::stable_sort(ordered.begin(), ordered.end(), [this](const Service* a, const Service* b) {
    return service_seq_.at(a->Key()) < service_seq_.at(b->Key());
  });
  for (const Service* s : ordered) IndexService(*s);
}

void Snapshot::IndexService(const Service& s) {
  for (const NetworkAddress& vip : s.vips) {
    if (vip.IsCidr()) {
      cidr_vips_.push_back({vip, &s});
    } else {
      by_vip_[{vip.network, vip.ip}].push_back(&s);
    }
  }
  by_hostname_[s.hostname].push_back(&s);
}

const Workload* Snapshot::FindWorkload(std::string_view uid) const {
  auto it = workloads_.find(uid);
  return it == workloads_.end() ? nullptr : &it->second;
}

std::vector<const Workload*> Snapshot::FindWorkloadsByIp(std::string_view network,
                                                         const IpAddress& ip) const {
  auto it = by_ip_.find(std::pair<std::string_view, const IpAddress&>(network, ip));
  return it == by_ip_.end() ? std::vector<const Workload*>{} : it->second;
}

const Workload* Snapshot::FindWorkloadByIp(std::string_view network, const IpAddress& ip) const {
  auto it = by_ip_.find(std::pair<std::string_view, const IpAddress&>(network, ip));
  return it == by_ip_.end() || it->second.empty() ? nullptr : it->second.front();
}

std::vector<const Workload*> Snapshot::FindLocalWorkloads(
    std::string_view ns, std::string_view service_account) const {
  auto it = node_local_.find({std::string(ns), std::string(service_account)});
  return it == node_local_.end() ? std::vector<const Workload*>{} : it->second;
}

const Service* Snapshot::FindServiceByKey(std::string_view key) const {
  auto it = services_.find(key);
  return it == services_.end() ? nullptr : &it->second;
}

// Visibility filter, then: same namespace as client > canonical > first seen.
const Service* Snapshot::Choose(const std::vector<const Service*>& candidates,
                                std::string_view client_ns) const {
  const Service* best = nullptr;
  std::tuple<bool, bool> best_rank{false, false};
  for (const Service* s : candidates) {
    if (s->visibility == Visibility::kNamespace && s->ns != client_ns) continue;
    std::tuple<bool, bool> rank{s->ns == client_ns, s->canonical};
    if (best == nullptr || rank > best_rank) {
      best = s;
      best_rank = rank;
    }
  }
  return best;
}

const Service* Snapshot::FindServiceByVip(std::string_view network, const IpAddress& ip,
                                          std::string_view client_ns) const {
  auto it = by_vip_.find(std::pair<std::string_view, const IpAddress&>(network, ip));
  if (it != by_vip_.end()) {
    if (const Service* s = Choose(it->second, client_ns)) return s;
  }
  // CIDR VIPs: (in client namespace, longest prefix, canonical).
  const Service* best = nullptr;
  std::tuple<bool, int, bool> best_rank{false, -1, false};
  for (const CidrVip& c : cidr_vips_) {
    if (c.vip.network != network) continue;
    auto cidr = net::Cidr::Make(c.vip.ip, c.vip.prefix_len);
    if (!cidr.ok() || !cidr->Contains(ip)) continue;
    const Service* s = c.service;
    if (s->visibility == Visibility::kNamespace && s->ns != client_ns) continue;
    std::tuple<bool, int, bool> rank{s->ns == client_ns, c.vip.prefix_len, s->canonical};
    if (best == nullptr || rank > best_rank) {
      best = s;
      best_rank = rank;
    }
  }
  return best;
}

const Service* Snapshot::FindServiceByHostname(std::string_view hostname,
                                               std::string_view client_ns) const {
  auto it = by_hostname_.find(hostname);
  return it == by_hostname_.end() ? nullptr : Choose(it->second, client_ns);
}

AddressMatch Snapshot::FindAddress(std::string_view network, const IpAddress& ip,
                                   std::string_view client_ns) const {
  if (const Workload* w = FindWorkloadByIp(network, ip)) return w;
  if (const Service* s = FindServiceByVip(network, ip, client_ns)) return s;
  return std::monostate{};
}

const Policy* Snapshot::FindPolicy(std::string_view key) const {
  auto it = policies_.find(key);
  return it == policies_.end() ? nullptr : &it->second;
}

}  // namespace ambit::mesh
