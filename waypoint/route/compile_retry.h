// VirtualService `retries` and HTTPRoute `retry` → RetryPolicy, with
// Istio's validation: a value Istio rejects (negative attempts, an unknown
// retryOn token, a per-try timeout under 1 ms, settings on a disabled
// policy, a status code out of range) is Sink::Invalid, so the whole config
// change is refused and the last good one stays. Control thread only.
#pragma once

#include <optional>
#include <string>

#include "waypoint/route/compile_util.h"
#include "waypoint/route/retry_policy.h"

namespace ambit::waypoint::route::internal {

// http[].retries: {attempts, perTryTimeout, retryOn, retryRemoteLocalities,
// backoff}. nullopt: invalid (reported).
std::optional<RetryPolicy> CompileIstioRetries(const Doc& doc, const YAML::Node& n,
                                               const std::string& field, Sink& sink);

// rules[].retry: {attempts (default 2), codes, backoff}, translated as istiod
// does: retryOn connect-failure,refused-stream,unavailable,cancelled plus the
// codes. nullopt: invalid (reported).
std::optional<RetryPolicy> CompileGatewayRetry(const Doc& doc, const YAML::Node& n,
                                               const std::string& field, Sink& sink);

}  // namespace ambit::waypoint::route::internal
