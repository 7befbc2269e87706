// AuthorizationPolicy → AuthzConfig: the policy level (apiVersion, action,
// dry-run, targetRefs binding). Rules: compile_authz_rules.cc.
#include "waypoint/route/compile_authz.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "common/mesh/waypoint.h"
#include "common/mesh/waypoint_binding.h"
#include "waypoint/route/compile_util.h"

namespace ambit::waypoint::route {

namespace {

using internal::Child;
using internal::Doc;
using internal::Field;
using internal::Present;
using internal::Sink;

constexpr std::string_view kApiVersions[] = {"security.istio.io/v1", "security.istio.io/v1beta1"};
constexpr std::string_view kGatewayGroup = "gateway.networking.k8s.io";
constexpr std::string_view kWaypointClasses[] = {"istio-waypoint", "ambit-waypoint"};

bool IsDryRun(const config::ResourceConfig& rc) {
  YAML::Node root = rc.node;
  if (!root.IsDefined() || root.IsNull()) {
    try {
      root = YAML::Load(rc.raw_yaml);
    } catch (const YAML::Exception&) {
      return false;
    }
  }
  const YAML::Node v = Child(Child(Child(root, "metadata"), "annotations"), "istio.io/dry-run");
  return v.IsScalar() && v.Scalar() == "true";
}

// Istio's canonical group: "" and "core" are the core group.
std::string CanonicalGroup(std::string_view g) { return g.empty() ? "core" : std::string(g); }

class AuthzCompiler {
 public:
  AuthzCompiler(const mesh::Snapshot& snap, const mesh::Workload& self,
                const AuthzCompileOptions& options, AuthzConfig* out, AuthzCompileResult* result,
                Sink& sink)
      : snap_(snap), self_(self), options_(options), out_(out), result_(result), sink_(sink) {
    auto it = self.labels.find(std::string(mesh::kGatewayNameLabel));
    if (it != self.labels.end()) gateway_ = it->second;
    out_->waypoint = gateway_.empty() ? "" : self.ns + "/" + gateway_;
  }

  void Policy(const Doc& doc, bool dry_run);
  void Finish();

 private:
  struct Binding {
    bool waypoint_wide = false;
    std::vector<const mesh::Service*> services;
    std::vector<std::string> names;  // for the dump
    std::vector<std::string> unbound;
  };
  Binding Bind(const Doc& doc, const YAML::Node& refs_node, bool list);
  void BindOne(const Doc& doc, const YAML::Node& ref, const std::string& path, Binding* b);
  std::optional<AuthzAction> Action(const Doc& doc);

  const mesh::Snapshot& snap_;
  const mesh::Workload& self_;
  const AuthzCompileOptions& options_;
  AuthzConfig* out_;
  AuthzCompileResult* result_;
  Sink& sink_;
  std::string gateway_;
  // Per policy index: where it binds.
  std::vector<Binding> bindings_;
};

std::optional<AuthzAction> AuthzCompiler::Action(const Doc& doc) {
  const YAML::Node a = Child(doc.spec, "action");
  if (!Present(a)) return AuthzAction::kAllow;
  const std::string v = a.IsScalar() ? a.Scalar() : "";
  if (v == "ALLOW") return AuthzAction::kAllow;
  if (v == "DENY") return AuthzAction::kDeny;
  if (v == "AUDIT") return AuthzAction::kAudit;
  if (v == "CUSTOM") {
    sink_.Add(doc, a,
              "action: CUSTOM (external authorization) is not supported by the waypoint; the "
              "policy's rules deny the requests they match (fail closed, as istiod does for an "
              "unknown provider)");
    return AuthzAction::kCustom;
  }
  sink_.Invalid(doc, a, fmt::format("action: '{}' is not ALLOW, DENY, AUDIT or CUSTOM", v));
  return std::nullopt;
}

void AuthzCompiler::BindOne(const Doc& doc, const YAML::Node& ref, const std::string& path,
                            Binding* b) {
  if (!ref.IsMap()) {
    sink_.Invalid(doc, ref, path + ": expected a map with kind and name");
    return;
  }
  if (!internal::RejectUnknownKeys(doc, ref, path, {"group", "kind", "name", "namespace"}, sink_)) {
    return;
  }
  const YAML::Node kind_n = Child(ref, "kind"), name_n = Child(ref, "name");
  if (!kind_n.IsScalar() || !name_n.IsScalar() || name_n.Scalar().empty()) {
    sink_.Invalid(doc, ref, path + ": kind and name are required");
    return;
  }
  const std::string kind = kind_n.Scalar(), name = name_n.Scalar();
  const YAML::Node group_n = Child(ref, "group");
  const std::string group = CanonicalGroup(group_n.IsScalar() ? group_n.Scalar() : "");
  const YAML::Node ns_n = Child(ref, "namespace");
  const std::string ref_ns = ns_n.IsScalar() ? ns_n.Scalar() : "";
  const std::string what = fmt::format("{} {}", kind, name);
  auto wrong_group = [&](std::string_view want) {
    sink_.Add(doc, ref,
              fmt::format("{}: group '{}' does not name kind {} (expected '{}'); binds nothing",
                          path, group == "core" ? "" : group, kind, want));
  };
  if (kind == "GatewayClass") {
    if (group != kGatewayGroup) return wrong_group(kGatewayGroup);
    const bool waypoint_class = std::find(std::begin(kWaypointClasses), std::end(kWaypointClasses),
                                          name) != std::end(kWaypointClasses);
    if (!waypoint_class || doc.ns != options_.root_namespace) {
      b->unbound.push_back(
          fmt::format("{}: only GatewayClass istio-waypoint from the root "
                      "namespace {} binds every waypoint",
                      what, options_.root_namespace));
      return;
    }
    b->waypoint_wide = true;
    b->names.push_back("GatewayClass " + name);
    return;
  }
  if (!ref_ns.empty() && ref_ns != doc.ns) {
    sink_.Add(doc, ns_n,
              fmt::format("{}.namespace: '{}' differs from the policy's namespace; Istio binds "
                          "only targets in the policy's own namespace, so this binds nothing",
                          path, ref_ns));
    return;
  }
  if (kind == "Gateway") {
    if (group != kGatewayGroup) return wrong_group(kGatewayGroup);
    if (doc.ns != self_.ns || name != gateway_) {
      b->unbound.push_back(fmt::format("Gateway {}/{} is not this waypoint ({})", doc.ns, name,
                                       out_->waypoint.empty() ? "unnamed" : out_->waypoint));
      return;
    }
    b->waypoint_wide = true;
    b->names.push_back(fmt::format("Gateway {}/{}", doc.ns, name));
    return;
  }
  if (kind == "Service" || kind == "ServiceEntry") {
    const std::string_view want = kind == "Service" ? "core" : "networking.istio.io";
    if (group != want) return wrong_group(kind == "Service" ? "" : want);
    bool found = false;
    for (const auto& [key, svc] : snap_.services()) {
      if (svc.name != name || svc.ns != doc.ns) continue;
      found = true;
      if (!UsesWaypoint(snap_, svc, self_)) {
        b->unbound.push_back(
            fmt::format("{} {}/{} does not use this waypoint", kind, doc.ns, name));
        continue;
      }
      b->services.push_back(&svc);
      b->names.push_back(fmt::format("{} {}/{}", kind, doc.ns, svc.hostname));
    }
    if (!found) {
      sink_.Add(
          doc, ref,
          fmt::format("{}: no {} {} in namespace {}; binds nothing", path, kind, name, doc.ns));
    }
    return;
  }
  sink_.Invalid(doc, kind_n,
                fmt::format("{}.kind: '{}' is not a target of AuthorizationPolicy (Gateway, "
                            "GatewayClass, Service or ServiceEntry)",
                            path, kind));
}

AuthzCompiler::Binding AuthzCompiler::Bind(const Doc& doc, const YAML::Node& refs, bool list) {
  Binding b;
  if (!list) {
    BindOne(doc, refs, "targetRef", &b);
    return b;
  }
  if (!refs.IsSequence()) {
    sink_.Invalid(doc, refs, "targetRefs: expected a list");
    return b;
  }
  for (size_t i = 0; i < refs.size(); ++i) BindOne(doc, refs[i], Field("targetRefs", i), &b);
  return b;
}

void AuthzCompiler::Policy(const Doc& doc, bool dry_run) {
  const YAML::Node ref = Child(doc.spec, "targetRef"), refs = Child(doc.spec, "targetRefs");
  if (!Present(ref) && !Present(refs)) return;  // a workload policy: the agent's
  if (!internal::RejectUnknownKeys(
          doc, doc.spec, "spec",
          {"selector", "targetRef", "targetRefs", "action", "provider", "rules"}, sink_)) {
    return;
  }
  if (Present(Child(doc.spec, "selector"))) {
    sink_.Invalid(doc, Child(doc.spec, "selector"),
                  "selector: only one of selector and targetRefs may be set");
    return;
  }
  if (Present(ref) && Present(refs)) {
    sink_.Invalid(doc, ref, "targetRef: only one of targetRef and targetRefs may be set");
    return;
  }
  std::optional<AuthzAction> action = Action(doc);
  if (!action) return;
  const YAML::Node provider = Child(doc.spec, "provider");
  if (Present(provider) && *action != AuthzAction::kCustom) {
    sink_.Invalid(doc, provider, "provider: only allowed with action CUSTOM");
    return;
  }
  Binding b = Present(refs) ? Bind(doc, refs, true) : Bind(doc, ref, false);
  AuthzPolicy p;
  p.key = doc.Key();
  p.source = fmt::format("{}:{}", doc.config->file, doc.config->line);
  p.action = *action;
  p.dry_run = dry_run;
  p.bound_to = b.names;
  const bool deny_like = *action == AuthzAction::kDeny || *action == AuthzAction::kCustom;
  const YAML::Node rules = Child(doc.spec, "rules");
  if (Present(rules) && !rules.IsSequence()) {
    sink_.Invalid(doc, rules, "rules: expected a list");
    return;
  }
  if (rules.IsSequence()) {
    for (size_t i = 0; i < rules.size(); ++i) {
      auto r = internal::CompileAuthzRule(doc, rules[i], Field("rules", i), deny_like, sink_);
      if (r) p.rules.push_back(std::move(*r));
    }
  }
  if (!b.waypoint_wide && b.services.empty()) {
    std::string why = b.unbound.empty() ? "no usable target" : fmt::format("{}", b.unbound[0]);
    for (size_t i = 1; i < b.unbound.size(); ++i) why += "; " + b.unbound[i];
    result_->unbound.push_back(fmt::format("{}: {}", p.key, why));
    return;
  }
  out_->policies.push_back(std::move(p));
  bindings_.push_back(std::move(b));
}

void AddTo(AuthzSet& set, const AuthzPolicy& p, uint32_t index) {
  std::vector<uint32_t>* list = nullptr;
  switch (p.action) {
    case AuthzAction::kAllow:
      list = p.dry_run ? &set.dry_allow : &set.allow;
      break;
    case AuthzAction::kDeny:
    case AuthzAction::kCustom:
      list = p.dry_run ? &set.dry_deny : &set.deny;
      break;
    case AuthzAction::kAudit:
      list = &set.audit;
      break;  // AUDIT only logs anyway
  }
  if (std::find(list->begin(), list->end(), index) == list->end()) list->push_back(index);
}

void AuthzCompiler::Finish() {
  for (uint32_t i = 0; i < out_->policies.size(); ++i) {
    if (bindings_[i].waypoint_wide) AddTo(out_->waypoint_wide, out_->policies[i], i);
  }
  // A service's set: the waypoint-wide policies plus its own, in config order.
  std::set<ServiceKeyLess::Key> services;
  for (const Binding& b : bindings_) {
    for (const mesh::Service* s : b.services) services.insert({s->ns, s->hostname});
  }
  for (const auto& key : services) {
    AuthzSet& set = out_->by_service[key];
    for (uint32_t i = 0; i < out_->policies.size(); ++i) {
      const Binding& b = bindings_[i];
      bool mine = b.waypoint_wide;
      for (const mesh::Service* s : b.services) {
        mine = mine || (s->ns == key.first && s->hostname == key.second);
      }
      if (mine) AddTo(set, out_->policies[i], i);
    }
  }
}

}  // namespace

bool UsesWaypoint(const mesh::Snapshot& snap, const mesh::Service& svc,
                  const mesh::Workload& self) {
  if (svc.waypoint && mesh::IsWaypointWorkload(snap, *svc.waypoint, self)) return true;
  for (const auto& w : svc.weighted_waypoints) {
    if (w.weight > 0 && mesh::IsWaypointWorkload(snap, w.destination, self)) return true;
  }
  return false;
}

AuthzCompileResult CompileAuthz(std::span<const config::ResourceConfig> resources,
                                const mesh::Snapshot& snapshot, const mesh::Workload& self,
                                const AuthzCompileOptions& options) {
  AuthzCompileResult result;
  auto cfg = std::make_shared<AuthzConfig>();
  Sink sink(&result.findings);
  AuthzCompiler c(snapshot, self, options, cfg.get(), &result, sink);
  std::set<std::string> seen;
  for (const config::ResourceConfig& rc : resources) {
    if (rc.kind != "AuthorizationPolicy") continue;
    if (std::find(std::begin(kApiVersions), std::end(kApiVersions), rc.api_version) ==
        std::end(kApiVersions)) {
      sink.AddRaw(rc, fmt::format("apiVersion '{}' is not security.istio.io/v1 or v1beta1; "
                                  "not applied",
                                  rc.api_version));
      continue;
    }
    std::optional<Doc> doc = internal::LoadDoc(rc, sink);
    if (!doc) continue;
    if (!seen.insert(doc->Key()).second) {
      sink.Add(*doc, "duplicate definition (same namespace and name); this one is ignored");
      continue;
    }
    try {
      c.Policy(*doc, IsDryRun(rc));
    } catch (const YAML::Exception& e) {
      sink.Invalid(*doc, doc->spec, fmt::format("cannot read the policy: {}", e.what()));
    }
  }
  c.Finish();
  result.config = std::move(cfg);
  return result;
}

}  // namespace ambit::waypoint::route
