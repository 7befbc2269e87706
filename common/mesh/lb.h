// Endpoint selection for a service (ISTIO-COMPAT §5.8): candidates, locality
// ranking (STRICT / FAILOVER) against the source workload, random pick
// weighted by Workload::capacity. Randomness is injected so tests are exact.
#pragma once

#include <cstdint>
#include <optional>
#include <random>

#include "common/mesh/snapshot.h"
#include "common/mesh/types.h"

namespace ambit::mesh {

class Rng {
 public:
  virtual ~Rng() = default;
  // Uniform in [0, n); n > 0.
  virtual uint64_t Below(uint64_t n) = 0;
};

class DefaultRng final : public Rng {
 public:
  DefaultRng() : gen_(std::random_device{}()) {}
  explicit DefaultRng(uint64_t seed) : gen_(seed) {}
  uint64_t Below(uint64_t n) override {
    return std::uniform_int_distribution<uint64_t>(0, n - 1)(gen_);
  }

 private:
  std::mt19937_64 gen_;
};

enum class LbPurpose : uint8_t {
  kStandard,  // the service must define the port
  kWaypoint,  // a missing port is fine if the endpoint has an application tunnel
};

struct Upstream {
  const Workload* workload = nullptr;
  IpAddress ip;       // unset when `resolve`
  uint16_t port = 0;  // translated target port
  // A hostname-only workload (ServiceEntry `resolution: DNS`): its address is
  // resolved on demand at connection time (ztunnel's resolve_on_demand_dns).
  bool resolve = false;
};

// Target port for `service_port` on this endpoint: endpoint map > service
// target port > the service port itself in waypoint mode when the workload
// has an application tunnel. nullopt = endpoint cannot serve the port.
std::optional<uint16_t> TranslatePort(const Service& svc, const Endpoint& ep,
                                      const Workload& w, uint16_t service_port,
                                      LbPurpose purpose);

// Address to dial on `w`: `original` if it is one of w's, else the first one
// allowed by the service's ip_families, preferring original's family.
std::optional<IpAddress> SelectIp(const Workload& w, const Service* svc,
                                  const IpAddress& original);

// ztunnel resolve_on_demand_dns: a random resolved address of the original
// destination's family, else a random one of the other; nullopt when empty.
std::optional<IpAddress> PickResolvedIp(const std::vector<IpAddress>& resolved,
                                        const IpAddress& original, Rng& rng);

// Locality rank of `ep` against `src` for the service's routing preferences;
// -1 = excluded (STRICT mismatch or NETWORK gate).
int LocalityRank(const LoadBalancing& lb, const Workload& src, const Workload& ep);

// Picks an endpoint or nullopt. A workload with no usable IP but a hostname
// is a candidate too (ztunnel: `has_address` is IPs or hostname), returned
// with `resolve` set. ("no healthy upstream"). `source` may be null.
std::optional<Upstream> PickEndpoint(const Snapshot& snap, const Service& svc,
                                     const Workload* source, uint16_t service_port,
                                     const IpAddress& original_ip, LbPurpose purpose, Rng& rng);

}  // namespace ambit::mesh
