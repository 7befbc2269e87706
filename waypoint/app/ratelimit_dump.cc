// /config_dump "rateLimits": each policy bound to the waypoint as it is
// enforced — where it came from, what it limits, its buckets (and how many
// per-value buckets exist now), its RateLimitService.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "waypoint/app/route_dump.h"

namespace ambit::waypoint {

namespace {

using nlohmann::json;

json Bucket(const route::TokenBucketSpec& b) {
  return {{"maxTokens", b.max_tokens},
          {"tokensPerFill", b.tokens_per_fill},
          {"fillInterval", fmt::format("{}ms", b.fill_interval.count() / 1'000'000)}};
}

std::string ActionText(const route::DescriptorAction& a) {
  using K = route::DescriptorAction::Kind;
  switch (a.kind) {
    case K::kRequestHeader: return fmt::format("{} = header {}", a.key, a.header);
    case K::kRemoteAddress: return fmt::format("{} = client address", a.key);
    case K::kGenericKey: return fmt::format("{} = {}", a.key, a.value);
    case K::kHeaderValueMatch:
      return fmt::format("{} = {} when headers {}match", a.key, a.value,
                         a.expect_match ? "" : "do not ");
    case K::kSourcePrincipal: return fmt::format("{} = source principal", a.key);
    case K::kRouteName: return fmt::format("{} = route name", a.key);
  }
  return a.key;
}

}  // namespace

nlohmann::json RateLimitsJson(const RateLimits* limits) {
  json out = json::array();
  if (limits == nullptr) return out;
  for (const auto& l : limits->limiters) {
    const route::RateLimitPolicy& p = l->policy();
    json j = {{"name", p.name}, {"source", p.source}, {"statPrefix", p.stat_prefix}};
    j["services"] = p.services.empty() ? json("every service of the waypoint") : json(p.services);
    json rules = json::array();
    for (const auto& r : p.rules) {
      json acts = json::array();
      for (const auto& a : r) acts.push_back(ActionText(a));
      rules.push_back(acts);
    }
    j["descriptorRules"] = rules;
    if (p.bucket) j["tokenBucket"] = Bucket(*p.bucket);
    json ds = json::array();
    const std::vector<size_t> counts = l->BucketCounts();
    for (size_t i = 0; i < p.descriptors.size(); ++i) {
      json entries = json::array();
      for (const auto& [k, v] : p.descriptors[i].entries) {
        entries.push_back({{"key", k}, {"value", v.empty() ? "* (a bucket per value)" : v}});
      }
      ds.push_back({{"entries", entries},
                    {"tokenBucket", Bucket(p.descriptors[i].bucket)},
                    {"buckets", i < counts.size() ? counts[i] : 0}});
    }
    if (!ds.empty()) j["descriptors"] = ds;
    if (p.Local()) {
      j["filterEnabledPerMillion"] = p.enabled_per_million;
      j["filterEnforcedPerMillion"] = p.enforced_per_million;
      j["status"] = p.status;
    }
    j["xRateLimitHeaders"] = p.x_ratelimit_headers;
    j["bucketsEvicted"] = l->Evictions();
    if (p.global) {
      j["global"] = {{"domain", p.global->domain},
                     {"service", p.global->service},
                     {"dialled", l->rls() != nullptr ? l->rls()->target() : ""},
                     {"timeout", fmt::format("{}ms", p.global->timeout.count() / 1'000'000)},
                     {"failureModeDeny", p.global->failure_mode_deny}};
    }
    out.push_back(j);
  }
  return out;
}

}  // namespace ambit::waypoint
