// The rate limit filter of the waypoint (Envoy's local_ratelimit and
// ratelimit HTTP filters, WAYPOINT.md §3 filter order: after authorization,
// before faults and the router).
//
// RateLimits is built on the control thread for each config change from
// RouteConfig::rate_limits and published in WaypointState; workers share it.
// Its buckets are shared by all workers (token_bucket.h) and carried over a
// config change for a policy whose name and bucket did not change, so a
// reload does not refill them. The global path asks a RateLimitService
// (RlsTransport, implemented over gRPC in waypoint/app/rls_client.cc) and
// waits on the request's worker, bounded by the policy's timeout.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/io/cancel.h"
#include "common/io/task.h"
#include "common/metrics/registry.h"
#include "waypoint/proxy/token_bucket.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint {

struct Downstream;
struct RouteResult;
struct FilterRequest;
struct FilterVerdict;
struct RequestInfo;

namespace flags {
inline constexpr std::string_view kRateLimited = "RL";
inline constexpr std::string_view kRateLimitServiceError = "RLSE";
}  // namespace flags

// ---- the RateLimitService call ---------------------------------------------

struct RlsRequest {
  std::string domain;
  std::vector<route::Descriptor> descriptors;
};

struct RlsResponse {
  enum class Code : uint8_t { kUnknown, kOk, kOverLimit };
  Code code = Code::kUnknown;
  std::vector<std::pair<std::string, std::string>> response_headers;  // to add downstream
  // The most constrained descriptor status, for x-ratelimit-*.
  bool has_limit = false;
  uint32_t limit = 0, remaining = 0;
  uint64_t window_seconds = 0;
  base::Duration reset{0};
};

class RlsTransport {
 public:
  using Done = absl::AnyInvocable<void(StatusOr<RlsResponse>)>;
  virtual ~RlsTransport() = default;
  // Any thread; `done` runs once on a transport thread (never inline).
  virtual void ShouldRateLimit(RlsRequest request, base::Duration timeout, Done done) = 0;
  virtual const std::string& target() const = 0;
};

// Makes (or shares) the transport for a service "host:port".
using RlsFactory = std::function<std::shared_ptr<RlsTransport>(const std::string& service)>;

// ---- descriptors ------------------------------------------------------------

struct DescriptorInput {
  const route::RequestView::Headers* headers = nullptr;
  std::string_view remote_address;  // client IP
  std::string_view principal;       // client SPIFFE id, "" if none
  std::string_view route_name;      // matched route, "" if none
};

// Each rule's descriptor (a rule whose input is missing makes none).
std::vector<route::Descriptor> MakeDescriptors(
    const std::vector<std::vector<route::DescriptorAction>>& rules, const DescriptorInput& in);

// ---- local buckets ----------------------------------------------------------

struct RateLimitCounters {
  metrics::CounterFamily* ok = nullptr;            // {policy}
  metrics::CounterFamily* over_limit = nullptr;    // {policy, source=local|global}
  metrics::CounterFamily* not_enforced = nullptr;  // {policy}
  metrics::CounterFamily* rls_errors = nullptr;    // {policy, reason}
  metrics::CounterFamily* evictions = nullptr;     // {policy}
};

class RateLimiter {
 public:
  RateLimiter(const route::RateLimitPolicy& policy, base::MonoTime now,
              const RateLimiter* previous, const RlsFactory& rls);
  const route::RateLimitPolicy& policy() const { return policy_; }

  struct LocalDecision {
    bool checked = false;   // some bucket applied
    bool limited = false;
    uint32_t limit = 0;     // the shown bucket's max_tokens
    TokenBucket::Result shown;  // the most constrained bucket
  };
  LocalDecision CheckLocal(const std::vector<route::Descriptor>& descriptors,
                           base::MonoTime now) const;
  RlsTransport* rls() const { return rls_.get(); }
  // For /config_dump: bucket keys live per descriptor.
  std::vector<size_t> BucketCounts() const;
  uint64_t Evictions() const;

 private:
  route::RateLimitPolicy policy_;
  std::shared_ptr<TokenBucket> default_bucket_;
  std::vector<std::shared_ptr<BucketMap>> descriptor_buckets_;  // per policy_.descriptors
  std::shared_ptr<RlsTransport> rls_;
};

// Per-descriptor-value buckets kept per descriptor entry, at most.
inline constexpr size_t kMaxBucketsPerDescriptor = 10'000;

struct RateLimits {
  std::vector<std::shared_ptr<const RateLimiter>> limiters;
  RateLimitCounters counters;
  static std::shared_ptr<const RateLimits> Build(const std::vector<route::RateLimitPolicy>& p,
                                                 const RateLimits* previous,
                                                 RateLimitCounters counters,
                                                 const RlsFactory& rls, base::MonoTime now);
};

// The filter: every limiter in order; the first that says no answers.
io::Task<void> RunRateLimits(const Downstream& d, const RouteResult& rr,
                             const FilterRequest& req, RequestInfo& info,
                             io::CancelScope* scope, FilterVerdict& verdict);

}  // namespace ambit::waypoint
