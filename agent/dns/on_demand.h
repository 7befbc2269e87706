// On-demand resolution of hostname-only workloads (ServiceEntry
// `resolution: DNS` endpoints, workloads with `hostname` and no IPs), as
// ztunnel's `resolve_on_demand_dns`: at connection time the agent looks the
// name up through the DNS proxy's upstream (the agent's own resolv.conf,
// c-ares, the agent's netns), A and AAAA in parallel (A only when IPv6 is
// off), and caches the answer for its TTL (ztunnel: hickory's cache, 4,096
// entries). Negative answers (NXDOMAIN, no address) are cached for their RFC
// 2308 TTL (SOA), at most `max_negative_ttl`; without a SOA, and on server
// failure or timeout, nothing is cached. Concurrent lookups of one name share
// one query. The connection waits; the worker does not (callbacks).
//
// Thread-safe. `done` runs exactly once: on the calling thread for a cache
// hit or an immediate failure, else on the transport's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "agent/dns/host_cache.h"
#include "agent/dns/upstream.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/metrics/registry.h"
#include "common/net/address.h"

namespace ambit::dns {

// Why a lookup produced no address (metric label via OnDemandErrorName).
enum class OnDemandError : uint8_t {
  kNone,
  kNxDomain,     // the name does not exist
  kNoAddresses,  // NOERROR without A/AAAA (ztunnel EmptyResolvedAddresses)
  kTimeout,      // no server answered in time
  kUnreachable,  // servers refused / unreachable
  kServerFailure,  // SERVFAIL, REFUSED, ... from every server
  kBadAnswer,    // an answer that does not parse
  kBadName,      // the workload's hostname is not a DNS name
  kOverload,     // too many names in flight
  kCancelled,    // the agent is stopping
};
std::string_view OnDemandErrorName(OnDemandError e);

struct OnDemandResult {
  OnDemandError error = OnDemandError::kNone;
  Status status;                          // failure: why, for the log line
  std::vector<net::IpAddress> addresses;  // IPv4 first, then IPv6
  bool cached = false;                    // answered from the cache
  bool ok() const { return error == OnDemandError::kNone; }
};

// Who asked (labels of ztunnel's istio_on_demand_dns_total; empty = unknown).
struct OnDemandSource {
  std::string workload, canonical_service, canonical_revision, ns, principal, app, version,
      cluster;
};

struct OnDemandOptions {
  size_t capacity = 4096;  // ztunnel: hickory cache_size
  bool ipv6 = true;        // AAAA too (IPV6_ENABLED)
  base::Duration max_ttl = std::chrono::hours(24);           // hickory's positive cap
  base::Duration max_negative_ttl = std::chrono::seconds(30);
  size_t max_in_flight = 1024;  // distinct names being looked up
};

class OnDemandResolver {
 public:
  using Done = absl::AnyInvocable<void(OnDemandResult)>;
  // Sends one query (built by this class) and reports the upstream's answer;
  // Upstream::Forward in the agent, a script in tests.
  using Transport =
      absl::AnyInvocable<void(std::vector<uint8_t> query, Upstream::Done done)>;

  OnDemandResolver(Transport transport, base::Clock& clock, OnDemandOptions options,
                   metrics::Registry* registry);
  // The agent's: through `upstream` (its own netns, UDP, TCP when truncated).
  static std::unique_ptr<OnDemandResolver> ForUpstream(Upstream& upstream, base::Clock& clock,
                                                       OnDemandOptions options,
                                                       metrics::Registry* registry);

  void Resolve(const std::string& hostname, const OnDemandSource& source, Done done);

  struct Stats {
    uint64_t hits = 0, misses = 0, queries = 0, failures = 0;
  };
  Stats stats() const;
  std::vector<HostCache::Row> CacheRows() const;
  base::MonoTime now() const { return clock_.Now(); }
  const OnDemandOptions& options() const { return options_; }

 private:
  struct Lookup;
  void Finish(const std::string& hostname, std::shared_ptr<Lookup> l);
  void Fail(OnDemandError e, Status st, Done& done);

  Transport transport_;
  base::Clock& clock_;
  OnDemandOptions options_;
  metrics::Counter* hits_ = nullptr;
  metrics::Counter* misses_ = nullptr;
  metrics::Counter* queries_ = nullptr;
  metrics::CounterFamily* failures_ = nullptr;
  metrics::CounterFamily* requests_ = nullptr;  // istio_on_demand_dns
  mutable std::mutex mu_;
  HostCache cache_;
  std::map<std::string, std::vector<Done>> waiting_;  // in flight → who waits
  uint16_t next_id_ = 1;
  Stats stats_;
};

}  // namespace ambit::dns
