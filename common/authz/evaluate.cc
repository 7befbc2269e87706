#include "common/authz/evaluate.h"

#include <algorithm>

#include "common/base/assertions.h"
#include "common/base/log.h"

namespace ambit::authz {
namespace {

constexpr std::string_view kModule = "authz";

bool IsDeny(uint8_t category) { return category <= 1; }

}  // namespace

// Already visited through the namespace or global list.
bool AuthzIndex::IsVisitedByScope(const Compiled& c, const mesh::Workload& w) {
  return c.scope == mesh::PolicyScope::kGlobal ||
         (c.scope == mesh::PolicyScope::kNamespace && c.ns == w.ns);
}

std::shared_ptr<const AuthzIndex> AuthzIndex::Build(std::span<const mesh::Policy> policies,
                                                    std::span<const mesh::Workload> workloads) {
  // Same key twice: the later entry replaces the earlier one, like a map.
  std::map<std::string_view, const mesh::Policy*> unique;
  std::vector<std::string> keys;
  keys.reserve(policies.size());
  for (const mesh::Policy& p : policies) keys.push_back(p.Key());
  for (size_t i = 0; i < policies.size(); ++i) unique[keys[i]] = &policies[i];
  std::shared_ptr<AuthzIndex> index(new AuthzIndex());
  index->policies_.reserve(unique.size());
  for (const auto& [key, p] : unique) index->Add(*p);
  index->Finish();
  for (const mesh::Workload& w : workloads) index->Resolve(w);
  std::sort(index->by_workload_.begin(), index->by_workload_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return index;
}

std::shared_ptr<const AuthzIndex> AuthzIndex::Build(const PolicyMap& policies,
                                                    const WorkloadMap& workloads) {
  std::shared_ptr<AuthzIndex> index(new AuthzIndex());
  index->policies_.reserve(policies.size());
  for (const auto& [key, p] : policies) index->Add(p);
  index->Finish();
  for (const auto& [uid, w] : workloads) index->Resolve(w);  // map: already sorted by uid
  return index;
}

void AuthzIndex::Add(const mesh::Policy& p) {
  Compiled c;
  c.index = flat_.Add(p);
  c.ns = p.ns;
  c.scope = p.scope;
  c.key = p.Key();
  c.deny_reason = "explicitly denied by " + c.key;
  c.allow_reason = "allowed by " + c.key;
  const bool deny = p.action == mesh::PolicyAction::kDeny;
  c.category = deny ? (p.dry_run ? kDenyDry : kDenyEnforced)
                    : (p.dry_run ? kAllowDry : kAllowEnforced);
  policies_.push_back(std::move(c));
}

void AuthzIndex::Finish() {
  std::map<std::string, Lists, std::less<>> namespaces;
  for (uint32_t i = 0; i < policies_.size(); ++i) {
    const Compiled& c = policies_[i];
    by_key_.emplace_back(c.key, i);
    switch (c.scope) {
      case mesh::PolicyScope::kGlobal:
        global_.by_category[c.category].push_back(i);
        break;
      case mesh::PolicyScope::kNamespace:
        namespaces[c.ns].by_category[c.category].push_back(i);
        break;
      case mesh::PolicyScope::kWorkloadSelector:
        break;  // reached only through Workload::authorization_policies
    }
  }
  std::sort(by_key_.begin(), by_key_.end());
  for (auto& [ns, lists] : namespaces) by_namespace_.emplace_back(ns, std::move(lists));
}

const AuthzIndex::Compiled* AuthzIndex::FindKey(std::string_view key) const {
  auto it = std::lower_bound(by_key_.begin(), by_key_.end(), key,
                             [](const auto& e, std::string_view k) { return e.first < k; });
  if (it == by_key_.end() || it->first != key) return nullptr;
  return &policies_[it->second];
}

const AuthzIndex::Lists* AuthzIndex::FindNamespace(std::string_view ns) const {
  auto it = std::lower_bound(
      by_namespace_.begin(), by_namespace_.end(), ns,
      [](const auto& e, std::string_view k) { return std::string_view(e.first) < k; });
  if (it == by_namespace_.end() || it->first != ns) return nullptr;
  return &it->second;
}

template <typename Fn>
bool AuthzIndex::Visit(const mesh::Workload& w, const Applicable& app, Category cat,
                       bool count_unknown, Fn&& fn) const {
  if (app.ns != nullptr) {
    for (uint32_t i : app.ns->by_category[cat]) {
      if (fn(policies_[i])) return true;
    }
  }
  for (uint32_t i : global_.by_category[cat]) {
    if (fn(policies_[i])) return true;
  }
  if (app.wl != nullptr) {
    if (count_unknown && app.wl->unknown > 0 &&
        unknown_keys_.fetch_add(app.wl->unknown, std::memory_order_relaxed) == 0) {
      AMBIT_LOG(kWarn, kModule, "workload {}/{} references {} unknown authorization policies",
                w.ns, w.name, app.wl->unknown);
    }
    for (uint32_t i : app.wl->lists.by_category[cat]) {
      if (fn(policies_[i])) return true;
    }
    return false;
  }
  for (const std::string& key : w.authorization_policies) {
    const Compiled* c = FindKey(key);
    if (c == nullptr) {
      if (count_unknown && unknown_keys_.fetch_add(1, std::memory_order_relaxed) == 0) {
        AMBIT_LOG(kWarn, kModule, "workload {}/{} references unknown authorization policy {}",
                  w.ns, w.name, key);
      }
      continue;
    }
    if (c->category != cat) continue;
    if (IsVisitedByScope(*c, w)) continue;
    if (fn(*c)) return true;
  }
  return false;
}

void AuthzIndex::Resolve(const mesh::Workload& w) {
  if (w.authorization_policies.empty()) return;
  WorkloadEntry e;
  e.keys = w.authorization_policies;
  for (const std::string& key : w.authorization_policies) {
    const Compiled* c = FindKey(key);
    if (c == nullptr) {
      ++e.unknown;
      continue;
    }
    if (IsVisitedByScope(*c, w)) continue;
    e.lists.by_category[c->category].push_back(static_cast<uint32_t>(c - policies_.data()));
  }
  by_workload_.emplace_back(w.uid, std::move(e));
}

AuthzIndex::Applicable AuthzIndex::FindApplicable(const mesh::Workload& w) const {
  Applicable app;
  app.ns = FindNamespace(w.ns);
  auto it = std::lower_bound(
      by_workload_.begin(), by_workload_.end(), w.uid,
      [](const auto& e, std::string_view k) { return std::string_view(e.first) < k; });
  if (it != by_workload_.end() && it->first == w.uid &&
      it->second.keys == w.authorization_policies) {
    app.wl = &it->second;
  }
  return app;
}

bool AuthzIndex::HasEnforcedAllow(const mesh::Workload& w, const Applicable& app) const {
  return Visit(w, app, kAllowEnforced, false, [](const Compiled&) { return true; });
}

uint32_t AuthzIndex::LogDryRun(const mesh::Workload& w, const Applicable& app, Category cat,
                               const MatchInput& in, bool count_unknown) const {
  uint32_t matched = 0;
  Visit(w, app, cat, count_unknown, [&](const Compiled& c) {
    if (Matches(c, in)) {
      ++matched;
      AMBIT_LOG(kInfo, kModule,
                "dry-run {} policy {} matched: src={} dst={}:{} identity={} workload={}/{}",
                IsDeny(c.category) ? "DENY" : "ALLOW", c.key, in.conn->src_ip.ToString(),
                in.conn->dst_ip.ToString(), in.conn->dst_port,
                in.has_identity ? in.principal : std::string_view("none"), w.ns, w.name);
    }
    return false;
  });
  return matched;
}

Decision AuthzIndex::Evaluate(const mesh::Workload& w, const ConnectionInfo& conn) const {
  AMBIT_BUG(conn.dst_port == mesh::kHbonePort,
            "authorization needs the target port after translation, not 15008");
  const MatchInput in = MatchInput::From(conn);
  const Applicable app = FindApplicable(w);
  Decision d;
  // 1. Dry-run DENY: logged only. (First pass: counts unknown keys.)
  d.dry_run_deny_matches = LogDryRun(w, app, kDenyDry, in, true);
  // 2. Enforced DENY.
  const Compiled* denied = nullptr;
  Visit(w, app, kDenyEnforced, false, [&](const Compiled& c) {
    if (!Matches(c, in)) return false;
    denied = &c;
    return true;
  });
  if (denied != nullptr) {
    d.allow = false;
    d.policy = denied->key;
    d.reason = denied->deny_reason;
    return d;
  }
  // 3. Dry-run ALLOW: logged only.
  d.dry_run_allow_matches = LogDryRun(w, app, kAllowDry, in, false);
  // 4. No enforced ALLOW → allow.
  if (!HasEnforcedAllow(w, app)) {
    d.allow = true;
    d.reason = kReasonNoAllowPolicies;
    return d;
  }
  // 5. Any enforced ALLOW matching → allow; 6. otherwise deny.
  const Compiled* allowed = nullptr;
  Visit(w, app, kAllowEnforced, false, [&](const Compiled& c) {
    if (!Matches(c, in)) return false;
    allowed = &c;
    return true;
  });
  if (allowed != nullptr) {
    d.allow = true;
    d.policy = allowed->key;
    d.reason = allowed->allow_reason;
    return d;
  }
  d.allow = false;
  d.reason = kReasonNoneAllowed;
  return d;
}

}  // namespace ambit::authz
