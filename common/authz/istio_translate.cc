// Istio AuthorizationPolicy documents → mesh::Policy (ISTIO-COMPAT §7.4);
// entry point for PeerAuthentication too (peer_authn.cc).
#include "common/authz/istio_translate.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "common/authz/translate_internal.h"

namespace ambit::authz {
namespace {

using internal::FindingSink;
using internal::Child;
using internal::Resource;

constexpr std::string_view kApiVersions[] = {"security.istio.io/v1",
                                             "security.istio.io/v1beta1"};
constexpr std::string_view kSpecKeys[] = {"selector", "targetRef", "targetRefs", "action",
                                          "provider", "rules"};

bool IsDryRun(const YAML::Node& metadata) {
  const YAML::Node a = Child(metadata, "annotations");
  if (!a.IsMap()) return false;
  const YAML::Node v = a["istio.io/dry-run"];
  return v.IsScalar() && v.Scalar() == "true";
}

std::string TargetKinds(const YAML::Node& spec) {
  std::vector<std::string> kinds;
  auto add = [&kinds](const YAML::Node& ref) {
    std::string k = ref.IsMap() && Child(ref, "kind").IsScalar() ? Child(ref, "kind").Scalar() : "?";
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  };
  if (Child(spec, "targetRef").IsDefined()) add(Child(spec, "targetRef"));
  const YAML::Node refs = Child(spec, "targetRefs");
  if (refs.IsSequence()) {
    for (size_t i = 0; i < refs.size(); ++i) add(refs[i]);
  }
  return internal::JoinNames(kinds);
}

// Returns the action, or nullopt (with a finding) when the policy must not
// be applied.
std::optional<mesh::PolicyAction> ParseAction(const Resource& r, const FindingSink& sink) {
  const YAML::Node a = Child(r.spec, "action");
  if (!a.IsDefined() || a.IsNull()) return mesh::PolicyAction::kAllow;
  const std::string v = a.IsScalar() ? a.Scalar() : "";
  if (v == "ALLOW") return mesh::PolicyAction::kAllow;
  if (v == "DENY") return mesh::PolicyAction::kDeny;
  if (v == "AUDIT" || v == "CUSTOM") {
    sink.Add(r, fmt::format("action {} cannot be enforced by the agent (istiod does not send it "
                            "to node proxies); policy not applied",
                            v));
  } else {
    sink.Add(r, fmt::format("spec.action: unknown action '{}' (expected ALLOW, DENY, AUDIT or "
                            "CUSTOM); policy not applied",
                            v));
  }
  return std::nullopt;
}

void AttachSelected(const Resource& r, const internal::Labels& selector,
                    std::span<const mesh::Workload> workloads, const TranslateOptions& options,
                    TranslateResult* out) {
  const bool any_ns = r.ns == options.root_namespace;
  for (const mesh::Workload& w : workloads) {
    if (!any_ns && w.ns != r.ns) continue;
    if (!internal::SelectorMatches(selector, w.labels)) continue;
    out->workload_policies[w.uid].push_back(r.Key());
  }
}

void TranslateAuthorizationPolicy(const Resource& r, std::span<const mesh::Workload> workloads,
                                  const TranslateOptions& options, const FindingSink& sink,
                                  TranslateResult* out) {
  for (const auto& kv : r.spec) {
    const std::string k = kv.first.Scalar();
    if (std::find(std::begin(kSpecKeys), std::end(kSpecKeys), k) == std::end(kSpecKeys)) {
      sink.Add(r, fmt::format("spec.{}: unknown field ignored", k));
    }
  }
  if (Child(r.spec, "targetRef").IsDefined() || Child(r.spec, "targetRefs").IsDefined()) {
    sink.Add(r, fmt::format("targetRef(s) to {} are enforced by a waypoint, not by the node "
                            "agent; policy not applied by the agent",
                            TargetKinds(r.spec)));
    return;
  }
  std::optional<mesh::PolicyAction> action = ParseAction(r, sink);
  if (!action) return;
  auto selector = internal::ParseSelector(r.spec);
  if (!selector.ok()) {
    sink.Add(r, fmt::format("{}; policy not applied", std::string(selector.status().message())));
    return;
  }
  mesh::Policy p;
  p.name = r.name;
  p.ns = r.ns;
  p.action = *action;
  p.dry_run = IsDryRun(r.metadata);
  if (selector->has_value()) {
    p.scope = mesh::PolicyScope::kWorkloadSelector;
    AttachSelected(r, **selector, workloads, options, out);
  } else {
    p.scope = r.ns == options.root_namespace ? mesh::PolicyScope::kGlobal
                                             : mesh::PolicyScope::kNamespace;
  }
  const bool deny = p.action == mesh::PolicyAction::kDeny;
  const YAML::Node rules = Child(r.spec, "rules");
  if (rules.IsDefined() && !rules.IsNull() && !rules.IsSequence()) {
    sink.Add(r, "spec.rules: expected a list; treated as no rules");
  } else if (rules.IsSequence()) {
    for (size_t i = 0; i < rules.size(); ++i) {
      internal::RuleResult rr = internal::TranslateRule(rules[i], i, deny, r.ns);
      if (rr.finding) sink.Add(r, std::move(*rr.finding));
      if (rr.rule) p.rules.push_back(std::move(*rr.rule));
    }
    if (!deny && rules.size() > 0 && p.rules.empty()) {
      sink.Add(r, "no rule of this ALLOW policy is enforceable at L4: it allows nothing, so "
                  "the workloads it applies to accept no connection unless another ALLOW "
                  "policy matches");
    }
  }
  out->policies.push_back(std::move(p));
}

// Parses the stored YAML of one resource; nullopt (with a finding) if unusable.
std::optional<Resource> Load(const config::ResourceConfig& rc, const FindingSink& sink) {
  const std::string_view ns = rc.ns.empty() ? std::string_view("default") : rc.ns;
  if (std::find(std::begin(kApiVersions), std::end(kApiVersions), rc.api_version) ==
      std::end(kApiVersions)) {
    sink.Add(rc, ns, fmt::format("apiVersion '{}' is not supported (expected "
                                 "security.istio.io/v1 or v1beta1); resource not applied",
                                 rc.api_version));
    return std::nullopt;
  }
  Resource r;
  r.config = &rc;
  r.ns = std::string(ns);
  r.name = rc.name;
  try {
    const YAML::Node doc = YAML::Load(rc.raw_yaml);
    r.metadata = Child(doc, "metadata");
    r.spec = Child(doc, "spec");
  } catch (const YAML::Exception& e) {
    sink.Add(rc, ns, fmt::format("cannot parse resource: {}; resource not applied", e.what()));
    return std::nullopt;
  }
  if (!r.spec.IsDefined() || r.spec.IsNull()) r.spec = YAML::Node(YAML::NodeType::Map);
  if (!r.spec.IsMap()) {
    sink.Add(r, "spec: expected a map; resource not applied");
    return std::nullopt;
  }
  return r;
}

}  // namespace

std::string Finding::ToString() const {
  return fmt::format("{}: {} {}: {}", location, kind, resource, message);
}

TranslateResult TranslateIstioResources(std::span<const config::ResourceConfig> resources,
                                        std::span<const mesh::Workload> workloads,
                                        const TranslateOptions& options) {
  TranslateResult out;
  FindingSink sink(&out.findings);
  std::vector<Resource> peer_authns;
  std::set<std::string> seen;  // kind + key
  for (const config::ResourceConfig& rc : resources) {
    const bool ap = rc.kind == "AuthorizationPolicy";
    if (!ap && rc.kind != "PeerAuthentication") continue;
    std::optional<Resource> r = Load(rc, sink);
    if (!r) continue;
    if (!seen.insert(rc.kind + " " + r->Key()).second) {
      sink.Add(*r, "duplicate definition (same kind, namespace and name); this one is ignored");
      continue;
    }
    try {
      if (ap) {
        TranslateAuthorizationPolicy(*r, workloads, options, sink, &out);
      } else {
        peer_authns.push_back(std::move(*r));
      }
    } catch (const YAML::Exception& e) {
      sink.Add(*r, fmt::format("cannot read resource: {}; resource not applied", e.what()));
    }
  }
  internal::TranslatePeerAuthentications(peer_authns, workloads, options, sink, &out);
  return out;
}

void AttachWorkloadPolicies(const TranslateResult& result, std::span<mesh::Workload> workloads) {
  for (mesh::Workload& w : workloads) {
    auto it = result.workload_policies.find(w.uid);
    if (it == result.workload_policies.end()) continue;
    for (const std::string& key : it->second) {
      auto& list = w.authorization_policies;
      if (std::find(list.begin(), list.end(), key) == list.end()) list.push_back(key);
    }
  }
}

}  // namespace ambit::authz
