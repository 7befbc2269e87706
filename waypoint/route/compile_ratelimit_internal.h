// Between compile_ratelimit.cc (binding to this waypoint, token buckets,
// descriptor actions) and the two front ends: compile_envoy_filter.cc
// (EnvoyFilter local_ratelimit / ratelimit patches) and
// compile_ratelimit_policy.cc (ambit.dev RateLimitPolicy). Values Envoy's
// validation refuses (a zero or unparsable fill interval, negative tokens)
// are Sink::Invalid; unknown or unsupported fields are warnings.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "waypoint/route/compile_util.h"

namespace ambit::waypoint::route::internal {

// Envoy's local rate limiter refuses fill intervals under 50 ms.
inline constexpr std::chrono::milliseconds kMinFillInterval{50};

// Whether `doc` (its targetRefs / targetRef / workloadSelector) selects this
// waypoint; Service targetRefs fill *services ("ns/hostname"). `self` null
// (unit tests): every policy binds.
bool BindsWaypoint(const Doc& doc, const mesh::Snapshot& snap, const mesh::Workload* self,
                   bool allow_selector, Sink& sink, std::vector<std::string>* services);

// {max_tokens, tokens_per_fill, fill_interval} in Envoy's snake_case or the
// RateLimitPolicy's camelCase (`camel`).
std::optional<TokenBucketSpec> CompileTokenBucket(const Doc& doc, const YAML::Node& n,
                                                  const std::string& field, bool camel,
                                                  Sink& sink);
// An Envoy JSON duration ("1s", "0.05s", or {seconds, nanos}); bad → Invalid.
std::optional<std::chrono::nanoseconds> ProtoDuration(const Doc& doc, const YAML::Node& n,
                                                      const std::string& field, Sink& sink);
// A route rate_limits[] entry {actions: [...]} → its actions (nullopt: dropped).
std::optional<std::vector<DescriptorAction>> CompileRateLimitActions(const Doc& doc,
                                                                     const YAML::Node& n,
                                                                     const std::string& field,
                                                                     Sink& sink);

void CompileEnvoyFilters(std::span<const config::ResourceConfig> resources,
                         const mesh::Snapshot& snap, const mesh::Workload* self,
                         RouteConfig* out, Sink& sink);
void CompileRateLimitPolicies(std::span<const config::ResourceConfig> resources,
                              const mesh::Snapshot& snap, const mesh::Workload* self,
                              RouteConfig* out, Sink& sink);

}  // namespace ambit::waypoint::route::internal
