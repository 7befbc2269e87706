// Internals shared by the Istio translators (istio_*.cc, peer_authn.cc).
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/authz/istio_translate.h"
#include "common/mesh/policy.h"
#include "common/mesh/types.h"
#include "common/base/status.h"

namespace ambit::authz::internal {

using Labels = std::map<std::string, std::string>;

// One parsed resource: metadata plus its spec node, and where to report.
struct Resource {
  const config::ResourceConfig* config = nullptr;
  std::string ns, name;  // ns defaults to "default" like kubectl
  YAML::Node metadata;   // Map
  YAML::Node spec;       // Map (possibly empty)
  std::string Key() const { return ns + "/" + name; }
};

class FindingSink {
 public:
  explicit FindingSink(std::vector<Finding>* out) : out_(out) {}
  void Add(const Resource& r, std::string message) const;
  void Add(const config::ResourceConfig& r, std::string_view ns, std::string message) const;

 private:
  std::vector<Finding>* out_;
};

// --- values (istio_values.cc)
// n[key] for a map that has it, else a valid Undefined node (yaml-cpp throws
// on any type query of a missing const child; this never does).
YAML::Node Child(const YAML::Node& n, std::string_view key);
// "*" → presence, "*x" → suffix, "x*" → prefix, else exact.
mesh::StringMatch Wildcard(std::string_view v);
// Sequence of scalars; error text names `field`.
StatusOr<std::vector<std::string>> StringList(const YAML::Node& n, std::string_view field);
// "10.0.0.0/8", "1.2.3.4" (→ /32), "fd00::1" (→ /128).
StatusOr<net::Cidr> ParseCidr(std::string_view text, std::string_view field);
StatusOr<uint16_t> ParsePort(std::string_view text, std::string_view field);
// "ns/sa" or bare "sa" (→ default_ns).
StatusOr<mesh::ServiceAccountMatch> ParseServiceAccount(std::string_view text,
                                                         std::string_view default_ns,
                                                         std::string_view field);
// spec.selector.matchLabels; nullopt when absent or empty (= no selector).
StatusOr<std::optional<Labels>> ParseSelector(const YAML::Node& spec);
bool SelectorMatches(const Labels& selector, const Labels& labels);
std::string JoinNames(const std::vector<std::string>& names);

// --- AuthorizationPolicy rules (istio_rules.cc)
struct RuleResult {
  std::optional<mesh::Rule> rule;  // nullopt: dropped (ALLOW only)
  std::optional<std::string> finding;
};
RuleResult TranslateRule(const YAML::Node& rule, size_t index, bool deny,
                         std::string_view policy_ns);

// --- PeerAuthentication (peer_authn.cc)
void TranslatePeerAuthentications(std::span<const Resource> resources,
                                  std::span<const mesh::Workload> workloads,
                                  const TranslateOptions& options, const FindingSink& findings,
                                  TranslateResult* out);

}  // namespace ambit::authz::internal
