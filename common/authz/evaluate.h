// L4 authorization (ISTIO-COMPAT §7): a per-snapshot index of policies and the
// per-connection evaluation.
//
// Build once per policy set on the control thread, share the index read-only
// with the workers (std::shared_ptr<const AuthzIndex>), then call Evaluate()
// per inbound connection (HBONE after CONNECT parsing, plaintext 15006).
// Evaluate() does not allocate unless logging of a dry-run match is enabled.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/authz/compiled.h"
#include "common/authz/match.h"
#include "common/mesh/policy.h"
#include "common/mesh/types.h"

namespace ambit::authz {

// Outcome of one evaluation. The views point into the AuthzIndex (or static
// text) and stay valid as long as the index does.
struct Decision {
  bool allow = false;
  std::string_view policy;  // deciding policy key "ns/name"; empty if none decided
  std::string_view reason;  // "explicitly denied by ns/name", ...
  uint32_t dry_run_deny_matches = 0;   // dry-run DENY policies that matched
  uint32_t dry_run_allow_matches = 0;  // dry-run ALLOW policies that matched
};

inline constexpr std::string_view kReasonNoAllowPolicies = "no ALLOW policy applies";
inline constexpr std::string_view kReasonNoneAllowed = "allow policies exist, but none allowed";

class AuthzIndex {
 public:
  using PolicyMap = std::map<std::string, mesh::Policy, std::less<>>;

  using WorkloadMap = std::map<std::string, mesh::Workload, std::less<>>;

  // With workloads, their authorization_policies keys are resolved once here
  // (a workload whose keys changed since falls back to per-call lookups).
  static std::shared_ptr<const AuthzIndex> Build(std::span<const mesh::Policy> policies,
                                                 std::span<const mesh::Workload> workloads = {});
  static std::shared_ptr<const AuthzIndex> Build(const PolicyMap& policies,
                                                 const WorkloadMap& workloads = {});

  AuthzIndex(const AuthzIndex&) = delete;
  AuthzIndex& operator=(const AuthzIndex&) = delete;

  // §7.1 applicable set for `workload` then §7.2 order with §7.3 matching.
  Decision Evaluate(const mesh::Workload& workload, const ConnectionInfo& conn) const;

  size_t policy_count() const { return policies_.size(); }
  // Workload authorization_policies keys that named no known policy (each
  // evaluation that met one counts once per unknown key).
  uint64_t unknown_policy_keys() const { return unknown_keys_.load(std::memory_order_relaxed); }

 private:
  // Lists of policy indexes, one per (action, dry_run) category.
  enum Category : uint8_t { kDenyDry = 0, kDenyEnforced, kAllowDry, kAllowEnforced, kCategories };
  struct Compiled {
    std::string key, deny_reason, allow_reason, ns;
    mesh::PolicyScope scope = mesh::PolicyScope::kNamespace;
    Category category = kAllowEnforced;
    uint32_t index = 0;  // in flat_
  };
  struct Lists {
    std::vector<uint32_t> by_category[kCategories];
  };
  // A workload's authorization_policies resolved at build time; used only
  // while the workload still lists exactly these keys.
  struct WorkloadEntry {
    std::vector<std::string> keys;
    Lists lists;
    uint32_t unknown = 0;
  };
  struct Applicable {
    const Lists* ns = nullptr;
    const WorkloadEntry* wl = nullptr;  // null: resolve the keys per evaluation
  };

  AuthzIndex() = default;
  void Add(const mesh::Policy& p);
  void Finish();
  void Resolve(const mesh::Workload& w);
  Applicable FindApplicable(const mesh::Workload& w) const;
  static bool IsVisitedByScope(const Compiled& c, const mesh::Workload& w);
  const Compiled* FindKey(std::string_view key) const;
  const Lists* FindNamespace(std::string_view ns) const;

  // Calls fn(const Compiled&) over the applicable set of one category until
  // it returns true; returns whether it did.
  template <typename Fn>
  bool Visit(const mesh::Workload& w, const Applicable& app, Category cat, bool count_unknown,
             Fn&& fn) const;
  bool HasEnforcedAllow(const mesh::Workload& w, const Applicable& app) const;
  uint32_t LogDryRun(const mesh::Workload& w, const Applicable& app, Category cat,
                     const MatchInput& in, bool count_unknown) const;

  bool Matches(const Compiled& c, const MatchInput& in) const { return flat_.Matches(c.index, in); }

  std::vector<Compiled> policies_;
  CompiledPolicies flat_;
  std::vector<std::pair<std::string_view, uint32_t>> by_key_;  // sorted
  std::vector<std::pair<std::string, Lists>> by_namespace_;    // sorted by ns
  Lists global_;
  std::vector<std::pair<std::string, WorkloadEntry>> by_workload_;  // sorted by uid
  mutable std::atomic<uint64_t> unknown_keys_{0};
};

// Convenience: index->Evaluate(workload, conn).
inline Decision Evaluate(const AuthzIndex& index, const mesh::Workload& workload,
                         const ConnectionInfo& conn) {
  return index.Evaluate(workload, conn);
}

}  // namespace ambit::authz
