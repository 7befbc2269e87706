// §7.1 applicability and §7.2 order through AuthzIndex.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "common/authz/evaluate.h"
#include "common/base/log.h"
#include "tests/unit/authz/authz_test_util.h"

namespace ambit::authz {
namespace {

using namespace testing;
using mesh::Match;
using mesh::Policy;
using A = mesh::PolicyAction;
using S = mesh::PolicyScope;

mesh::Workload Api(std::vector<std::string> keys = {}) {
  mesh::Workload w;
  w.uid = "uid-api";
  w.name = "api";
  w.ns = "default";
  w.authorization_policies = std::move(keys);
  return w;
}

Match Port(uint16_t p) {
  Match m;
  m.destination_ports = {p};
  return m;
}
Match FromFrontend() {
  Match m;
  m.principals = {Exact("cluster.local/ns/default/sa/frontend")};
  return m;
}

struct Expect {
  bool allow;
  std::string policy;
  std::string reason;
};

// A Decision that owns its texts (the index dies with the helper).
struct Owned {
  bool allow;
  std::string policy, reason;
  uint32_t dry_run_deny_matches, dry_run_allow_matches;
};

Owned Eval(const std::vector<Policy>& policies, const mesh::Workload& w,
           const ConnectionInfo& c) {
  auto index = AuthzIndex::Build(policies);
  Decision d = Evaluate(*index, w, c);
  return {d.allow, std::string(d.policy), std::string(d.reason), d.dry_run_deny_matches,
          d.dry_run_allow_matches};
}

void Check(const Owned& d, const Expect& e) {
  CHECK(d.allow == e.allow);
  CHECK(d.policy == e.policy);
  CHECK(d.reason == e.reason);
}

void Check(const Decision& d, const Expect& e) {
  CHECK(d.allow == e.allow);
  CHECK(std::string(d.policy) == e.policy);
  CHECK(std::string(d.reason) == e.reason);
}

TEST_CASE("evaluation order and results") {
  Policy allow_fe = OneMatch("default", "allow-fe", A::kAllow, FromFrontend());
  Policy allow_9090 = OneMatch("default", "allow-9090", A::kAllow, Port(9090));
  Policy deny_8080 = OneMatch("default", "deny-8080", A::kDeny, Port(8080));
  Policy deny_9090 = OneMatch("default", "deny-9090", A::kDeny, Port(9090));
  Policy allow_nothing;
  allow_nothing.ns = "default";
  allow_nothing.name = "allow-nothing";
  Policy allow_all = allow_nothing;
  allow_all.name = "allow-all";
  allow_all.rules.push_back(mesh::Rule{});
  Policy deny_all = allow_all;
  deny_all.name = "deny-all";
  deny_all.action = A::kDeny;

  struct Case {
    const char* name;
    std::vector<Policy> policies;
    bool mtls;
    Expect expect;
  };
  const Case cases[] = {
      {"no policies", {}, true, {true, "", "no ALLOW policy applies"}},
      {"allow matches", {allow_fe}, true, {true, "default/allow-fe", "allowed by default/allow-fe"}},
      {"allow needs identity", {allow_fe}, false,
       {false, "", "allow policies exist, but none allowed"}},
      {"allow not matching", {allow_9090}, true,
       {false, "", "allow policies exist, but none allowed"}},
      {"second allow matches", {allow_9090, allow_fe}, true,
       {true, "default/allow-fe", "allowed by default/allow-fe"}},
      {"allow-nothing", {allow_nothing}, true,
       {false, "", "allow policies exist, but none allowed"}},
      {"allow-nothing plus matching allow", {allow_nothing, allow_fe}, true,
       {true, "default/allow-fe", "allowed by default/allow-fe"}},
      {"allow-all (rule without clauses)", {allow_all}, false,
       {true, "default/allow-all", "allowed by default/allow-all"}},
      {"deny beats allow", {allow_fe, deny_8080}, true,
       {false, "default/deny-8080", "explicitly denied by default/deny-8080"}},
      {"deny not matching, allow matching", {allow_fe, deny_9090}, true,
       {true, "default/allow-fe", "allowed by default/allow-fe"}},
      {"deny only, not matching", {deny_9090}, false, {true, "", "no ALLOW policy applies"}},
      {"deny-all beats allow-all", {allow_all, deny_all}, true,
       {false, "default/deny-all", "explicitly denied by default/deny-all"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Check(Eval(c.policies, Api(), Conn(c.mtls ? &Frontend() : nullptr)), c.expect);
  }
}

TEST_CASE("dry-run policies are evaluated and logged, never enforced") {
  Policy dry_deny = OneMatch("default", "dry-deny", A::kDeny, Port(8080));
  dry_deny.dry_run = true;
  Policy dry_allow_nothing;
  dry_allow_nothing.ns = "default";
  dry_allow_nothing.name = "dry-allow-nothing";
  dry_allow_nothing.dry_run = true;
  Policy dry_allow = OneMatch("default", "dry-allow", A::kAllow, Port(8080));
  dry_allow.dry_run = true;

  auto& logger = base::ProcessLogger();
  logger.CaptureForTest(true);
  Owned d = Eval({dry_deny, dry_allow_nothing, dry_allow}, Api(), Conn(&Frontend()));
  std::vector<std::string> lines = logger.CapturedForTest();
  logger.CaptureForTest(false);
  Check(d, {true, "", "no ALLOW policy applies"});
  CHECK(d.dry_run_deny_matches == 1);
  CHECK(d.dry_run_allow_matches == 1);
  auto logged = [&lines](std::string_view needle) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  };
  CHECK(logged("dry-run DENY policy default/dry-deny matched"));
  CHECK(logged("dry-run ALLOW policy default/dry-allow matched"));
  CHECK_FALSE(logged("dry-allow-nothing"));

  // A dry-run ALLOW does not count as an enforced ALLOW, and a dry-run DENY
  // does not block an enforced ALLOW.
  Policy allow_9090 = OneMatch("default", "allow-9090", A::kAllow, Port(9090));
  d = Eval({dry_deny, dry_allow, allow_9090}, Api(), Conn(&Frontend()));
  Check(d, {false, "", "allow policies exist, but none allowed"});
  CHECK(d.dry_run_deny_matches == 1);
}

TEST_CASE("applicability: namespace, global, workload keys") {
  Policy other_ns = OneMatch("prod", "allow-9090", A::kAllow, Port(9090));
  Policy global = OneMatch("istio-system", "global-deny", A::kDeny, Port(8080), S::kGlobal);
  Policy selected = OneMatch("default", "sel-deny", A::kDeny, Port(8080), S::kWorkloadSelector);
  Policy other_sel = OneMatch("default", "sel-allow", A::kAllow, Port(9090), S::kWorkloadSelector);
  const ConnectionInfo c = Conn(&Frontend());

  // Another namespace's policy does not apply.
  Check(Eval({other_ns}, Api(), c), {true, "", "no ALLOW policy applies"});
  // GLOBAL applies everywhere.
  Check(Eval({global}, Api(), c),
        {false, "istio-system/global-deny", "explicitly denied by istio-system/global-deny"});
  // Selector-scoped: only through the workload's keys.
  Check(Eval({selected, other_sel}, Api(), c), {true, "", "no ALLOW policy applies"});
  Check(Eval({selected}, Api({"default/sel-deny"}), c),
        {false, "default/sel-deny", "explicitly denied by default/sel-deny"});
  Check(Eval({other_sel}, Api({"default/sel-allow"}), c),
        {false, "", "allow policies exist, but none allowed"});
  // A selector-scoped policy of another namespace listed by key applies too.
  Policy root_sel = OneMatch("istio-system", "root-sel", A::kAllow, Port(8080),
                             S::kWorkloadSelector);
  Check(Eval({root_sel}, Api({"istio-system/root-sel"}), c),
        {true, "istio-system/root-sel", "allowed by istio-system/root-sel"});
}

TEST_CASE("unknown workload keys are skipped and counted") {
  Policy allow = OneMatch("default", "sel", A::kAllow, Port(8080), S::kWorkloadSelector);
  auto index = AuthzIndex::Build(std::vector<Policy>{allow});
  const mesh::Workload w = Api({"default/missing", "default/sel", "x/also-missing"});
  Decision d = Evaluate(*index, w, Conn(nullptr));
  Check(d, {true, "default/sel", "allowed by default/sel"});
  CHECK(index->unknown_policy_keys() == 2);
  Evaluate(*index, w, Conn(nullptr));
  CHECK(index->unknown_policy_keys() == 4);
}

TEST_CASE("workload keys resolved at build time; changed keys fall back to lookups") {
  Policy deny = OneMatch("default", "sel-deny", A::kDeny, Port(8080), S::kWorkloadSelector);
  Policy allow = OneMatch("default", "sel-allow", A::kAllow, Port(9090), S::kWorkloadSelector);
  Policy dry = OneMatch("default", "ns-dry", A::kDeny, Port(8080));
  dry.dry_run = true;
  const std::vector<Policy> policies = {deny, allow, dry};
  std::vector<mesh::Workload> ws = {Api({"default/sel-allow", "default/nope", "default/ns-dry"})};
  auto index = AuthzIndex::Build(policies, ws);
  const ConnectionInfo c = Conn(&Frontend());
  Decision d = Evaluate(*index, ws[0], c);
  Check(d, {false, "", "allow policies exist, but none allowed"});
  CHECK(d.dry_run_deny_matches == 1);  // listed namespace policy counted once
  CHECK(index->unknown_policy_keys() == 1);
  // Same uid, different keys than at build time: resolved per call.
  mesh::Workload changed = Api({"default/sel-deny"});
  Check(Evaluate(*index, changed, c),
        {false, "default/sel-deny", "explicitly denied by default/sel-deny"});
  CHECK(index->unknown_policy_keys() == 1);
  // Map overload.
  AuthzIndex::PolicyMap pm;
  for (const Policy& p : policies) pm[p.Key()] = p;
  AuthzIndex::WorkloadMap wm;
  wm[changed.uid] = changed;
  auto from_maps = AuthzIndex::Build(pm, wm);
  Check(Evaluate(*from_maps, changed, c),
        {false, "default/sel-deny", "explicitly denied by default/sel-deny"});
}

TEST_CASE("a namespace policy also listed by key is evaluated once") {
  Policy dry = OneMatch("default", "dry", A::kDeny, Port(8080));
  dry.dry_run = true;
  Owned d = Eval({dry}, Api({"default/dry"}), Conn(&Frontend()));
  CHECK(d.dry_run_deny_matches == 1);
}

TEST_CASE("plaintext vs identity: STRICT-style deny") {
  Match m;
  m.not_principals = {Presence()};
  Policy strict = OneMatch("istio-system", "istio_converted_static_strict", A::kDeny, m,
                           S::kWorkloadSelector);
  Policy allow_fe = OneMatch("default", "allow-fe", A::kAllow, FromFrontend());
  const mesh::Workload w = Api({"istio-system/istio_converted_static_strict"});
  Check(Eval({strict, allow_fe}, w, Conn(nullptr)),
        {false, "istio-system/istio_converted_static_strict",
         "explicitly denied by istio-system/istio_converted_static_strict"});
  Check(Eval({strict, allow_fe}, w, Conn(&Frontend())),
        {true, "default/allow-fe", "allowed by default/allow-fe"});
}

TEST_CASE("port gate never hides a rule without a port condition") {
  Match p80 = Port(80);
  Match p81_ns = Port(81);
  p81_ns.namespaces = {Exact("default")};
  auto rule = [](std::vector<mesh::Clause> c) { return mesh::Rule{std::move(c)}; };
  Policy mixed;  // rule 0 needs port 80, rule 1 only an identity
  mixed.ns = "default";
  mixed.name = "mixed";
  mixed.rules = {rule({mesh::Clause{{p80}}}), rule({mesh::Clause{{FromFrontend()}}})};
  Check(Eval({mixed}, Api(), Conn(&Frontend())), {true, "default/mixed", "allowed by default/mixed"});
  Check(Eval({mixed}, Api(), Conn(nullptr)), {false, "", "allow policies exist, but none allowed"});

  Policy gated;  // every rule needs a port: 80/81 or 8080
  gated.ns = "default";
  gated.name = "gated";
  gated.rules = {rule({mesh::Clause{{p80, p81_ns}}, mesh::Clause{{FromFrontend()}}}),
                 rule({mesh::Clause{{Match{}, Port(8080)}}})};
  Check(Eval({gated}, Api(), Conn(nullptr)), {true, "default/gated", "allowed by default/gated"});
  Check(Eval({gated}, Api(), Conn(&Frontend(), "10.0.0.5", "10.0.1.7", 81)),
        {true, "default/gated", "allowed by default/gated"});
  Check(Eval({gated}, Api(), Conn(&Frontend(), "10.0.0.5", "10.0.1.7", 9090)),
        {false, "", "allow policies exist, but none allowed"});

  Policy empty_clause;  // a clause of only empty Matches is false (upstream)
  empty_clause.ns = "default";
  empty_clause.name = "empty-clause";
  empty_clause.rules = {rule({mesh::Clause{{Match{}}}}), rule({mesh::Clause{}})};
  Check(Eval({empty_clause}, Api(), Conn(nullptr, "10.0.0.5", "10.0.1.7", 1234)),
        {true, "default/empty-clause", "allowed by default/empty-clause"});  // 2nd rule
  empty_clause.rules.pop_back();
  Check(Eval({empty_clause}, Api(), Conn(nullptr, "10.0.0.5", "10.0.1.7", 1234)),
        {false, "", "allow policies exist, but none allowed"});
}

TEST_CASE("index build: map input, duplicate keys, empty matches") {
  AuthzIndex::PolicyMap map;
  Policy p = OneMatch("default", "p", A::kAllow, Port(9090));
  map[p.Key()] = p;
  auto from_map = AuthzIndex::Build(map);
  CHECK(from_map->policy_count() == 1);
  Check(Evaluate(*from_map, Api(), Conn(nullptr)),
        {false, "", "allow policies exist, but none allowed"});

  // Same key twice: the later one wins.
  Policy p2 = OneMatch("default", "p", A::kAllow, Port(8080));
  auto dup = AuthzIndex::Build(std::vector<Policy>{p, p2});
  CHECK(dup->policy_count() == 1);
  Check(Evaluate(*dup, Api(), Conn(nullptr)), {true, "default/p", "allowed by default/p"});

  // A clause holding only empty Match objects is false; one empty Match
  // beside a real one is skipped.
  Policy empties;
  empties.ns = "default";
  empties.name = "empties";
  empties.rules.push_back(mesh::Rule{{mesh::Clause{{Match{}, Match{}}}}});
  Check(Eval({empties}, Api(), Conn(nullptr)), {false, "", "allow policies exist, but none allowed"});
  empties.rules[0].clauses[0].matches.push_back(Port(8080));
  Check(Eval({empties}, Api(), Conn(nullptr)),
        {true, "default/empties", "allowed by default/empties"});
}

}  // namespace
}  // namespace ambit::authz
