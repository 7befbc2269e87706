#include "waypoint/route/retry_policy.h"

#include <array>
#include <utility>

namespace ambit::waypoint::route {

namespace {

constexpr std::array<std::pair<uint32_t, std::string_view>, 16> kTokens = {{
    {kRetry5xx, "5xx"},
    {kRetryGatewayError, "gateway-error"},
    {kRetryReset, "reset"},
    {kRetryResetBeforeRequest, "reset-before-request"},
    {kRetryConnectFailure, "connect-failure"},
    {kRetryEnvoyRateLimited, "envoy-ratelimited"},
    {kRetryRetriable4xx, "retriable-4xx"},
    {kRetryRefusedStream, "refused-stream"},
    {kRetryRetriableStatusCodes, "retriable-status-codes"},
    {kRetryRetriableHeaders, "retriable-headers"},
    {kRetryHttp3PostConnect, "http3-post-connect-failure"},
    {kRetryGrpcCancelled, "cancelled"},
    {kRetryGrpcDeadlineExceeded, "deadline-exceeded"},
    {kRetryGrpcInternal, "internal"},
    {kRetryGrpcResourceExhausted, "resource-exhausted"},
    {kRetryGrpcUnavailable, "unavailable"},
}};

RetryPolicy MakeDefault() {
  RetryPolicy p;
  p.num_retries = 2;
  p.retry_on = kRetryConnectFailure | kRetryRefusedStream | kRetryGrpcUnavailable |
               kRetryGrpcCancelled;
  p.is_default = true;
  return p;
}

}  // namespace

std::string_view RetryOnName(uint32_t bit) {
  for (const auto& [b, name] : kTokens) {
    if (b == bit) return name;
  }
  return {};
}

uint32_t RetryOnBit(std::string_view token) {
  for (const auto& [b, name] : kTokens) {
    if (name == token) return b;
  }
  return 0;
}

std::string RetryPolicy::RetryOnText() const {
  std::string out;
  auto add = [&](std::string_view s) {
    if (!out.empty()) out += ',';
    out += s;
  };
  for (const auto& [b, name] : kTokens) {
    // Numeric codes stand for retriable-status-codes, as they are written.
    if (b == kRetryRetriableStatusCodes && !status_codes.empty()) continue;
    if ((retry_on & b) != 0) add(name);
  }
  for (int code : status_codes) add(std::to_string(code));
  return out;
}

const RetryPolicy& IstioDefaultRetry() {
  static const RetryPolicy p = MakeDefault();
  return p;
}

}  // namespace ambit::waypoint::route
