#include "waypoint/proxy/retry.h"

#include <algorithm>
#include <charconv>

namespace ambit::waypoint {

using namespace route;  // NOLINT: the RetryOn bits

namespace {

bool GrpcRetriable(uint32_t on, int code) {
  switch (code) {
    case 1: return (on & kRetryGrpcCancelled) != 0;
    case 4: return (on & kRetryGrpcDeadlineExceeded) != 0;
    case 8: return (on & kRetryGrpcResourceExhausted) != 0;
    case 13: return (on & kRetryGrpcInternal) != 0;
    case 14: return (on & kRetryGrpcUnavailable) != 0;
    default: return false;
  }
}

}  // namespace

bool Retriable(const RetryPolicy& policy, const TryResult& r) {
  const uint32_t on = policy.retry_on;
  // Every "no response at all" outcome is covered by 5xx, gateway-error and
  // reset; the narrower tokens each cover their own.
  constexpr uint32_t kAnyReset = kRetry5xx | kRetryGatewayError | kRetryReset;
  switch (r.outcome) {
    case TryOutcome::kConnectFailure:
      return (on & (kAnyReset | kRetryConnectFailure | kRetryResetBeforeRequest)) != 0;
    case TryOutcome::kRefusedStream:
      return (on & (kAnyReset | kRetryRefusedStream | kRetryResetBeforeRequest)) != 0;
    case TryOutcome::kResetBeforeRequest:
      return (on & (kAnyReset | kRetryResetBeforeRequest)) != 0;
    case TryOutcome::kReset:
      return (on & kAnyReset) != 0;
    case TryOutcome::kPerTryTimeout:
      return true;  // retried whatever the conditions (WAYPOINT.md §6)
    case TryOutcome::kResponse:
      break;
  }
  const int s = r.status;
  if ((on & kRetry5xx) && s >= 500 && s <= 599) return true;
  if ((on & kRetryGatewayError) && (s == 502 || s == 503 || s == 504)) return true;
  if ((on & kRetryRetriable4xx) && s == 409) return true;
  if ((on & kRetryRetriableStatusCodes) &&
      std::find(policy.status_codes.begin(), policy.status_codes.end(), s) !=
          policy.status_codes.end()) {
    return true;
  }
  if ((on & kRetryEnvoyRateLimited) && r.rate_limited) return true;
  if (r.grpc_status && GrpcRetriable(on, *r.grpc_status)) return true;
  return false;
}

std::optional<int> ParseGrpcStatus(const std::string* value) {
  if (value == nullptr || value->empty()) return std::nullopt;
  int v = 0;
  auto [p, ec] = std::from_chars(value->data(), value->data() + value->size(), v);
  if (ec != std::errc() || p != value->data() + value->size()) return std::nullopt;
  return v;
}

std::optional<base::MonoTime> RetryState::TryDeadline(base::MonoTime now) const {
  std::optional<base::MonoTime> d = deadline_;
  if (policy_.per_try_timeout.count() > 0) {
    const base::MonoTime per_try =
        now + std::chrono::duration_cast<base::Duration>(policy_.per_try_timeout);
    if (!d || per_try < *d) d = per_try;
  }
  return d;
}

RetryState::Decision RetryState::Decide(const TryResult& r, bool replayable) const {
  if (policy_.num_retries == 0 || !Retriable(policy_, r)) return Decision::kNotRetriable;
  if (tries_ > policy_.num_retries) return Decision::kLimitExceeded;
  if (!replayable) return Decision::kNotReplayable;
  return Decision::kRetry;
}

std::optional<base::Duration> RetryState::NextBackoff(base::MonoTime now, uint64_t random) {
  const auto base = std::chrono::duration_cast<base::Duration>(policy_.backoff_base);
  const auto cap = base * 10;
  ++backoffs_;
  const uint32_t n = std::min<uint32_t>(backoffs_, 20);
  const auto upper = base * static_cast<int64_t>((uint64_t{1} << n) - 1);
  base::Duration wait = upper.count() > 0
                            ? base::Duration(static_cast<int64_t>(
                                  random % static_cast<uint64_t>(upper.count())))
                            : base::Duration::zero();
  wait = std::min(wait, cap);
  if (deadline_ && now + wait >= *deadline_) return std::nullopt;
  return wait;
}

void RetryState::NotePriority(uint32_t priority) {
  if (tries_ == 0) return;
  priorities_.resize(tries_);  // a forgotten try's slot is taken again
  priorities_[tries_ - 1] = priority;
}

const std::vector<uint32_t>* RetryState::ExcludedPriorities() {
  if (!policy_.retry_remote_localities) return nullptr;
  const size_t n =
      std::min<size_t>(priorities_.size(), tries_) / kPriorityUpdateFrequency *
      kPriorityUpdateFrequency;
  if (n == 0) return nullptr;
  excluded_.assign(priorities_.begin(), priorities_.begin() + static_cast<ptrdiff_t>(n));
  return &excluded_;
}

}  // namespace ambit::waypoint
