// A route's retry policy (WAYPOINT.md §6) as compiled from VirtualService
// `retries` and HTTPRoute `retry` (compile_retry.cc), in Envoy's terms: how
// many retries after the first try, which outcomes are retriable
// (`retryOn`), the per-try timeout and the backoff base. A route without
// one gets Istio's default (IstioDefaultRetry). Immutable after Compile;
// waypoint/proxy/retry.h applies it per request.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ambit::waypoint::route {

// retryOn conditions (Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on
// tokens), one bit each.
enum RetryOn : uint32_t {
  kRetry5xx = 1u << 0,                  // any 5xx, and every reset / connect failure
  kRetryGatewayError = 1u << 1,         // 502, 503, 504, and resets
  kRetryReset = 1u << 2,                // no response: disconnect, reset, read timeout
  kRetryResetBeforeRequest = 1u << 3,   // reset before the request was sent
  kRetryConnectFailure = 1u << 4,       // the upstream connection could not be made
  kRetryEnvoyRateLimited = 1u << 5,     // response carries x-envoy-ratelimited
  kRetryRetriable4xx = 1u << 6,         // 409
  kRetryRefusedStream = 1u << 7,        // HTTP/2 REFUSED_STREAM
  kRetryRetriableStatusCodes = 1u << 8, // the listed status codes
  kRetryRetriableHeaders = 1u << 9,     // retriable_headers (none are configurable here)
  kRetryHttp3PostConnect = 1u << 10,    // HTTP/3 only: never applies (no HTTP/3 upstream)
  kRetryGrpcCancelled = 1u << 11,       // grpc-status 1
  kRetryGrpcDeadlineExceeded = 1u << 12,  // 4
  kRetryGrpcInternal = 1u << 13,        // 13
  kRetryGrpcResourceExhausted = 1u << 14, // 8
  kRetryGrpcUnavailable = 1u << 15,     // 14
};

// The token for one bit (for /config_dump), and the bit for a token (0:
// unknown).
std::string_view RetryOnName(uint32_t bit);
uint32_t RetryOnBit(std::string_view token);

struct RetryPolicy {
  // Retries after the first try (total tries = 1 + num_retries); 0 disables.
  uint32_t num_retries = 2;
  uint32_t retry_on = 0;                 // RetryOn bits
  std::vector<int> status_codes;         // retriable-status-codes (numeric retryOn tokens)
  std::chrono::nanoseconds per_try_timeout{0};  // 0: none (the route's timeout bounds all)
  // Jittered exponential backoff from `backoff_base`, capped at 10× it.
  std::chrono::nanoseconds backoff_base = std::chrono::milliseconds(25);
  // VirtualService retryRemoteLocalities (Envoy's previous_priorities).
  bool retry_remote_localities = false;
  bool is_default = false;               // Istio's default (no policy written)
  std::string source;                    // "file:line" of the written policy
  std::string RetryOnText() const;       // "connect-failure,refused-stream,503"
};

// Istio's policy for a route that sets none: 2 retries on
// connect-failure,refused-stream,unavailable,cancelled.
const RetryPolicy& IstioDefaultRetry();

}  // namespace ambit::waypoint::route
