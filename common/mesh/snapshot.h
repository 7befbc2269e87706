// WorkloadStore (mutable, control thread) and Snapshot (immutable, shared by
// workers as std::shared_ptr<const Snapshot>, read without locks).
//
// Indexes (ISTIO-COMPAT §5.6): workloads by uid, by (network, IP) (not for
// HOST_NETWORK; several per IP allowed, "//Pod/" + HBONE preferred), node-local
// by (namespace, service account); services by key "ns/hostname", by
// (network, VIP), CIDR VIPs, by hostname. Endpoints are derived from
// Workload::services when the snapshot is built: entries naming a service that
// is not known yet are staged and attach as soon as it arrives; UNHEALTHY
// endpoints are dropped unless the service's health policy is ALLOW_ALL.
//
// Pointers returned by a Snapshot live as long as the Snapshot.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "common/mesh/policy.h"
#include "common/mesh/types.h"
#include "common/base/status.h"

namespace ambit::mesh {

class Snapshot;

// What an IP resolves to: nothing, a workload, or a service.
using AddressMatch = std::variant<std::monostate, const Workload*, const Service*>;

class WorkloadStore {
 public:
  // node_name: only workloads on this node enter the node-local index
  // (empty = all workloads).
  explicit WorkloadStore(std::string node_name = {}) : node_name_(std::move(node_name)) {}

  // Insert or replace. Rejects missing uid/key with InvalidArgument.
  Status UpsertWorkload(Workload w);
  Status UpsertService(Service s);
  Status UpsertPolicy(Policy p);
  bool RemoveWorkload(std::string_view uid);
  bool RemoveService(std::string_view key);  // "ns/hostname"
  bool RemovePolicy(std::string_view key);   // "ns/name"
  void Clear();

  size_t workload_count() const { return workloads_.size(); }
  size_t service_count() const { return services_.size(); }

  // Each call returns a new snapshot with a higher generation().
  std::shared_ptr<const Snapshot> Build();

 private:
  std::string node_name_;
  uint64_t generation_ = 0;
  uint64_t next_seq_ = 0;
  std::map<std::string, Workload, std::less<>> workloads_;
  std::map<std::string, std::pair<uint64_t, Service>, std::less<>> services_;  // seq: first seen
  std::map<std::string, Policy, std::less<>> policies_;
};

class Snapshot {
 public:
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  uint64_t generation() const { return generation_; }

  // --- workloads
  const Workload* FindWorkload(std::string_view uid) const;
  // Preferred workload with this address on this network, or null.
  const Workload* FindWorkloadByIp(std::string_view network, const IpAddress& ip) const;
  std::vector<const Workload*> FindWorkloadsByIp(std::string_view network,
                                                 const IpAddress& ip) const;
  // Node-local workloads for ZDS WorkloadInfo matching.
  std::vector<const Workload*> FindLocalWorkloads(std::string_view ns,
                                                  std::string_view service_account) const;
  const std::map<std::string, Workload, std::less<>>& workloads() const { return workloads_; }

  // --- services
  const Service* FindServiceByKey(std::string_view key) const;
  // Service choice for a client namespace among those sharing a VIP (host
  // VIPs first, then CIDR VIPs) or hostname; null if none visible.
  const Service* FindServiceByVip(std::string_view network, const IpAddress& ip,
                                  std::string_view client_ns) const;
  const Service* FindServiceByHostname(std::string_view hostname,
                                       std::string_view client_ns) const;
  const std::map<std::string, Service, std::less<>>& services() const { return services_; }
  // Endpoints waiting for a service that is not known (yet), by service key.
  const std::map<std::string, std::vector<Endpoint>, std::less<>>& staged_endpoints() const {
    return staged_;
  }

  // Workload IP match wins over a service VIP.
  AddressMatch FindAddress(std::string_view network, const IpAddress& ip,
                           std::string_view client_ns) const;

  // --- policies
  const Policy* FindPolicy(std::string_view key) const;
  const std::map<std::string, Policy, std::less<>>& policies() const { return policies_; }

 private:
  friend class WorkloadStore;
  Snapshot() = default;
  // (network, IP) keys, looked up without building a std::string.
  using NetIp = std::pair<std::string, IpAddress>;
  struct NetIpLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      // Spelled out: clang-14 with libstdc++ 12 rejects comparing
      // tuple<string&, ...> with tuple<string_view&, ...>.
      const std::string_view an(a.first), bn(b.first);
      if (an != bn) return an < bn;
      return a.second < b.second;
    }
  };
  struct CidrVip {
    NetworkAddress vip;
    const Service* service;
  };

  const Service* Choose(const std::vector<const Service*>& candidates,
                        std::string_view client_ns) const;
  void Index(const std::string& node_name);
  void IndexService(const Service& s);

  std::map<std::string, Workload, std::less<>> workloads_;
  std::map<std::string, Service, std::less<>> services_;
  std::map<std::string, uint64_t, std::less<>> service_seq_;
  std::map<std::string, Policy, std::less<>> policies_;
  std::map<std::string, std::vector<Endpoint>, std::less<>> staged_;
  uint64_t generation_ = 0;
  std::map<NetIp, std::vector<const Workload*>, NetIpLess> by_ip_;
  std::map<NetIp, std::vector<const Service*>, NetIpLess> by_vip_;
  std::vector<CidrVip> cidr_vips_;
  std::map<std::string, std::vector<const Service*>, std::less<>> by_hostname_;
  std::map<std::pair<std::string, std::string>, std::vector<const Workload*>> node_local_;
};

}  // namespace ambit::mesh
