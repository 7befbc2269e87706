// Rate limit policies of the waypoint (issue 17 item 7), compiled from
// EnvoyFilter (envoy.filters.http.local_ratelimit / envoy.filters.http.ratelimit
// patches targeted at the waypoint, compile_envoy_filter.cc) and from Ambit's
// own RateLimitPolicy (compile_ratelimit_policy.cc). Both compile into the
// same model: descriptor rules (Envoy's route `rate_limits` actions) that
// turn a request into descriptors, local token buckets matched against them,
// and optionally a global RateLimitService call. Immutable once compiled;
// the buckets themselves live in waypoint/proxy/ratelimit_filter.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ambit::waypoint::route {

// Envoy's TokenBucket: starts full with max_tokens, gains tokens_per_fill
// every fill_interval, never above max_tokens.
struct TokenBucketSpec {
  uint32_t max_tokens = 0;
  uint32_t tokens_per_fill = 1;
  std::chrono::nanoseconds fill_interval{0};
  bool operator==(const TokenBucketSpec&) const = default;
};

// One action of a route `rate_limits[]` entry: it adds one entry to the
// descriptor, or (absent input) makes the whole descriptor not apply.
struct DescriptorAction {
  enum class Kind : uint8_t {
    kRequestHeader,     // request_headers{header_name, descriptor_key, skip_if_absent}
    kRemoteAddress,     // remote_address → ("remote_address", client IP)
    kGenericKey,        // generic_key{descriptor_value, descriptor_key="generic_key"}
    kHeaderValueMatch,  // header_value_match{descriptor_value, expect_match, headers}
    kSourcePrincipal,   // Ambit: the client's SPIFFE identity (mTLS peer)
    kRouteName,         // Ambit: the matched route's name ("default" when none)
  };
  Kind kind = Kind::kRequestHeader;
  std::string header;  // kRequestHeader: lower-case name
  std::string key;     // the descriptor key
  std::string value;   // kGenericKey, kHeaderValueMatch
  // kHeaderValueMatch: every (name, exact value or presence when empty)
  // must hold for a match.
  std::vector<std::pair<std::string, std::string>> match_headers;
  bool expect_match = true;
  bool skip_if_absent = false;  // kRequestHeader: drop this entry, keep the rest
};

// Ordered entries, as the RateLimitService proto carries them.
using Descriptor = std::vector<std::pair<std::string, std::string>>;

// The local_ratelimit `descriptors[]`: a bucket for requests whose generated
// descriptor has exactly these keys with these values. An empty value
// matches any value and gives each distinct value its own bucket (how the
// typed RateLimitPolicy limits per x-api-key).
struct LocalDescriptor {
  Descriptor entries;
  TokenBucketSpec bucket;
};

struct GlobalRateLimit {
  std::string domain;
  std::string service;  // gRPC target host:port
  std::chrono::nanoseconds timeout = std::chrono::milliseconds(20);  // Envoy's default
  bool failure_mode_deny = false;
};

struct RateLimitPolicy {
  std::string name;    // "EnvoyFilter ns/name" or "RateLimitPolicy ns/name"
  std::string source;  // "file:line"
  std::string stat_prefix;
  // Services ("ns/hostname") the policy limits; empty: every request the
  // waypoint serves.
  std::vector<std::string> services;
  // Each rule makes one descriptor from the request (all actions apply) or none.
  std::vector<std::vector<DescriptorAction>> rules;

  // Local: the default bucket (every request), then descriptor buckets.
  std::optional<TokenBucketSpec> bucket;
  std::vector<LocalDescriptor> descriptors;
  bool always_consume_default = true;  // always_consume_default_token_bucket
  uint32_t enabled_per_million = 1'000'000;   // filter_enabled
  uint32_t enforced_per_million = 1'000'000;  // filter_enforced
  bool x_ratelimit_headers = false;  // enable_x_ratelimit_headers DRAFT_VERSION_03
  int status = 429;
  // response_headers_to_add: on the rate-limited (429) answer.
  std::vector<std::pair<std::string, std::string>> response_headers;

  std::optional<GlobalRateLimit> global;

  bool Local() const { return bucket.has_value() || !descriptors.empty(); }
};

}  // namespace ambit::waypoint::route
