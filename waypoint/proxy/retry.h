// Retries (WAYPOINT.md §6): what one try of a request ended with, whether
// the route's RetryPolicy calls that retriable, and the per-request state
// both codecs drive their try loop with — tries counted, the per-try and
// overall deadlines, jittered exponential backoff. The codecs decide what
// "replayable" means for their body (http1_proxy.cc, h2_proxy.cc).
// Worker thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/clock.h"
#include "waypoint/route/retry_policy.h"

namespace ambit::waypoint {

// Bodies kept for replay while a request may still be retried; a longer
// body is streamed without a copy and its request is not retried (counted
// as retry event "body_too_large"), like Envoy's buffer limit.
inline constexpr size_t kMaxRetryBody = 64 * 1024;

enum class TryOutcome : uint8_t {
  kConnectFailure,      // no upstream connection or stream could be opened
  kRefusedStream,       // HTTP/2 REFUSED_STREAM: the upstream did not process it
  kResetBeforeRequest,  // the upstream went away before it had the request
  kReset,               // reset / closed after the request, before a response head
  kPerTryTimeout,       // the per-try timeout fired before a response head
  kResponse,            // a final response head arrived
};

struct TryResult {
  TryOutcome outcome = TryOutcome::kResponse;
  int status = 0;                 // kResponse
  std::optional<int> grpc_status; // grpc-status in the response head (trailers-only)
  bool rate_limited = false;      // x-envoy-ratelimited in the response head
};

// Whether `policy`'s conditions cover `r` (attempts left are not looked at).
bool Retriable(const route::RetryPolicy& policy, const TryResult& r);

// grpc-status text → code (nullopt when absent or not a number).
std::optional<int> ParseGrpcStatus(const std::string* value);

class RetryState {
 public:
  // `deadline`: the route's overall timeout, if any.
  RetryState(const route::RetryPolicy& policy, std::optional<base::MonoTime> deadline)
      : policy_(policy), deadline_(deadline) {}

  const route::RetryPolicy& policy() const { return policy_; }
  // Tries started so far (1 during the first).
  uint32_t tries() const { return tries_; }
  void StartTry() { ++tries_; }
  // The try did not count (a stale pooled connection, sent again at once).
  void ForgetTry() { --tries_; }
  // Whether a request may ever be retried (tees its body for replay).
  bool may_retry() const { return policy_.num_retries > 0; }

  // The deadline of the try starting at `now`: the overall one, or the
  // per-try timeout when that ends first.
  std::optional<base::MonoTime> TryDeadline(base::MonoTime now) const;
  // Whether the overall deadline has passed.
  bool OverallExpired(base::MonoTime now) const { return deadline_ && now >= *deadline_; }

  enum class Decision : uint8_t {
    kRetry,           // back off, then try again (another endpoint when one exists)
    kNotRetriable,    // the policy does not cover the outcome: it stands
    kLimitExceeded,   // covered but no retries left: it stands, flag URX
    kNotReplayable,   // covered but the body cannot be sent again: it stands
  };
  Decision Decide(const TryResult& r, bool replayable) const;

  // The wait before the next try (Envoy's fully jittered exponential
  // backoff: uniform in [0, (2^n - 1) × base), at most 10 × base), or
  // nullopt when the overall deadline comes first (the request times out).
  std::optional<base::Duration> NextBackoff(base::MonoTime now, uint64_t random);

  // retryRemoteLocalities (Envoy's previous_priorities with istiod's
  // update_frequency 2): the locality priority the current try went to,
  // and the priorities the next pick skips — those of the tries before the
  // last multiple of 2 (tries 1-2 use the normal priority, 3-4 skip the
  // priorities of 1-2, ...). Null without the flag or nothing to skip.
  static constexpr size_t kPriorityUpdateFrequency = 2;
  void NotePriority(uint32_t priority);
  const std::vector<uint32_t>* ExcludedPriorities();

 private:
  const route::RetryPolicy& policy_;
  std::optional<base::MonoTime> deadline_;
  uint32_t tries_ = 0;
  uint32_t backoffs_ = 0;
  std::vector<uint32_t> priorities_;  // per try
  std::vector<uint32_t> excluded_;    // ExcludedPriorities' answer
};

// The retry events counted per cluster (ambit_waypoint_retries{cluster,event}).
namespace retry_event {
inline constexpr std::string_view kRetry = "retry";                  // a retry was sent
inline constexpr std::string_view kSuccess = "success";              // succeeded after retrying
inline constexpr std::string_view kLimitExceeded = "limit_exceeded"; // URX
inline constexpr std::string_view kBodyTooLarge = "body_too_large";  // not replayable
inline constexpr std::string_view kTimeout = "timeout";              // the overall timeout cut it
}  // namespace retry_event

}  // namespace ambit::waypoint
