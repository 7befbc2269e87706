// §7.3 match semantics, table-driven: every attribute, each not* form, with a
// peer identity and in plaintext.
#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "common/authz/evaluate.h"
#include "common/authz/match.h"
#include "tests/unit/authz/authz_test_util.h"

namespace ambit::authz {
namespace {

using namespace testing;
using mesh::Match;

struct Row {
  const char* name;
  std::function<void(Match&)> set;
  bool with_identity;  // peer = cluster.local/ns/default/sa/frontend
  bool plaintext;      // no peer identity
};

// Connection: 10.0.0.5 → 10.0.1.7:8080.
const Row kRows[] = {
    {"principals exact", [](Match& m) { m.principals = {Exact("cluster.local/ns/default/sa/frontend")}; }, true, false},
    {"principals compare without spiffe://", [](Match& m) { m.principals = {Exact("spiffe://cluster.local/ns/default/sa/frontend")}; }, false, false},
    {"principals other", [](Match& m) { m.principals = {Exact("cluster.local/ns/default/sa/backend")}; }, false, false},
    {"principals prefix", [](Match& m) { m.principals = {Prefix("cluster.local/ns/default/")}; }, true, false},
    {"principals suffix", [](Match& m) { m.principals = {Suffix("/sa/frontend")}; }, true, false},
    {"principals presence", [](Match& m) { m.principals = {Presence()}; }, true, false},
    {"principals any of", [](Match& m) { m.principals = {Exact("x"), Suffix("frontend")}; }, true, false},
    {"not_principals exact", [](Match& m) { m.not_principals = {Exact("cluster.local/ns/default/sa/frontend")}; }, false, true},
    {"not_principals presence", [](Match& m) { m.not_principals = {Presence()}; }, false, true},
    {"not_principals other", [](Match& m) { m.not_principals = {Exact("cluster.local/ns/x/sa/y")}; }, true, true},
    {"namespaces exact", [](Match& m) { m.namespaces = {Exact("default")}; }, true, false},
    {"namespaces other", [](Match& m) { m.namespaces = {Exact("prod")}; }, false, false},
    {"namespaces prefix", [](Match& m) { m.namespaces = {Prefix("def")}; }, true, false},
    {"namespaces presence", [](Match& m) { m.namespaces = {Presence()}; }, true, false},
    {"not_namespaces same", [](Match& m) { m.not_namespaces = {Exact("default")}; }, false, true},
    {"not_namespaces other", [](Match& m) { m.not_namespaces = {Exact("prod")}; }, true, true},
    {"service_accounts same", [](Match& m) { m.service_accounts = {{"default", "frontend"}}; }, true, false},
    {"service_accounts other ns", [](Match& m) { m.service_accounts = {{"prod", "frontend"}}; }, false, false},
    {"service_accounts other sa", [](Match& m) { m.service_accounts = {{"default", "backend"}}; }, false, false},
    {"not_service_accounts same", [](Match& m) { m.not_service_accounts = {{"default", "frontend"}}; }, false, true},
    {"not_service_accounts other", [](Match& m) { m.not_service_accounts = {{"default", "backend"}}; }, true, true},
    {"source_ips containing /24", [](Match& m) { m.source_ips = {Cidr("10.0.0.0/24")}; }, true, true},
    {"source_ips host", [](Match& m) { m.source_ips = {Cidr("10.0.0.5")}; }, true, true},
    {"source_ips other", [](Match& m) { m.source_ips = {Cidr("10.0.1.0/24")}; }, false, false},
    {"source_ips v6 never holds v4", [](Match& m) { m.source_ips = {Cidr("::/0")}; }, false, false},
    {"not_source_ips containing", [](Match& m) { m.not_source_ips = {Cidr("10.0.0.0/8")}; }, false, false},
    {"not_source_ips other", [](Match& m) { m.not_source_ips = {Cidr("192.168.0.0/16")}; }, true, true},
    {"destination_ips host", [](Match& m) { m.destination_ips = {Cidr("10.0.1.7/32")}; }, true, true},
    {"destination_ips other", [](Match& m) { m.destination_ips = {Cidr("10.0.0.0/24")}; }, false, false},
    {"not_destination_ips containing", [](Match& m) { m.not_destination_ips = {Cidr("10.0.1.0/24")}; }, false, false},
    {"not_destination_ips other", [](Match& m) { m.not_destination_ips = {Cidr("10.9.0.0/16")}; }, true, true},
    {"destination_ports same", [](Match& m) { m.destination_ports = {8080}; }, true, true},
    {"destination_ports other", [](Match& m) { m.destination_ports = {9090}; }, false, false},
    {"destination_ports any of", [](Match& m) { m.destination_ports = {9090, 8080}; }, true, true},
    {"not_destination_ports same", [](Match& m) { m.not_destination_ports = {8080}; }, false, false},
    {"not_destination_ports other", [](Match& m) { m.not_destination_ports = {9999}; }, true, true},
    {"attributes are AND-ed", [](Match& m) { m.principals = {Presence()}; m.destination_ports = {9090}; }, false, false},
    {"positive and negative together", [](Match& m) { m.source_ips = {Cidr("10.0.0.0/8")}; m.not_source_ips = {Cidr("10.0.0.0/24")}; }, false, false},
    {"STRICT shape: not_principals presence + port exception", [](Match& m) { m.not_principals = {Presence()}; m.not_destination_ports = {8080}; }, false, false},
};

TEST_CASE("Match attributes: identity vs plaintext") {
  const ConnectionInfo mtls = Conn(&Frontend());
  const ConnectionInfo plain = Conn(nullptr);
  for (const Row& row : kRows) {
    CAPTURE(row.name);
    Match m;
    row.set(m);
    REQUIRE_FALSE(IsEmptyMatch(m));
    CHECK(MatchMatches(m, MatchInput::From(mtls)) == row.with_identity);
    CHECK(MatchMatches(m, MatchInput::From(plain)) == row.plaintext);
    // The evaluator's compiled form agrees with the reference semantics.
    auto index = AuthzIndex::Build(
        std::vector<mesh::Policy>{OneMatch("default", "p", mesh::PolicyAction::kAllow, m)});
    mesh::Workload w;
    w.ns = "default";
    CHECK(Evaluate(*index, w, mtls).allow == row.with_identity);
    CHECK(Evaluate(*index, w, plain).allow == row.plaintext);
  }
}

TEST_CASE("namespaces come from the peer certificate") {
  const identity::Identity prod = Id("spiffe://cluster.local/ns/prod/sa/frontend");
  Match m;
  m.namespaces = {Exact("prod")};
  const ConnectionInfo from_prod = Conn(&prod);
  const ConnectionInfo from_default = Conn(&Frontend());
  CHECK(MatchMatches(m, MatchInput::From(from_prod)));
  CHECK_FALSE(MatchMatches(m, MatchInput::From(from_default)));
  const MatchInput in = MatchInput::From(from_prod);
  CHECK(in.principal == "cluster.local/ns/prod/sa/frontend");
  CHECK(in.peer_ns == "prod");
  CHECK(in.peer_sa == "frontend");
}

TEST_CASE("IPv6 connections") {
  const ConnectionInfo c = Conn(nullptr, "fd00:1::5", "fd00:2::7", 80);
  const MatchInput in = MatchInput::From(c);
  Match m;
  m.source_ips = {Cidr("fd00:1::/64")};
  CHECK(MatchMatches(m, in));
  m.source_ips = {Cidr("10.0.0.0/8")};
  CHECK_FALSE(MatchMatches(m, in));
  m.source_ips.clear();
  m.destination_ips = {Cidr("fd00:2::7")};
  CHECK(MatchMatches(m, in));
}

TEST_CASE("CidrContains at non-byte prefix boundaries") {
  CHECK(CidrContains(Cidr("172.16.0.0/12"), Ip("172.31.255.255")));
  CHECK_FALSE(CidrContains(Cidr("172.16.0.0/12"), Ip("172.32.0.0")));
  CHECK(CidrContains(Cidr("0.0.0.0/0"), Ip("1.2.3.4")));
  CHECK(CidrContains(Cidr("2001:db8::/33"), Ip("2001:db8:7fff::1")));
  CHECK_FALSE(CidrContains(Cidr("2001:db8::/33"), Ip("2001:db8:8000::")));
  CHECK(CidrContains(Cidr("fd00::1/128"), Ip("fd00::1")));
  CHECK_FALSE(CidrContains(Cidr("fd00::1/128"), Ip("fd00::2")));
  CHECK(CidrContains(Cidr("10.1.2.3/31"), Ip("10.1.2.2")));
  CHECK_FALSE(CidrContains(Cidr("10.1.2.3/31"), Ip("10.1.2.4")));
}

// Upstream truth table (ztunnel rbac.rs `Authorization::matches`): zero rules
// never match; a rule with no clause matches; a clause with no Match is true;
// empty Matches are skipped and never make a clause true, so a clause of only
// empty Matches is false. Each row is checked through the reference
// functions and the compiled evaluator, as ALLOW and as DENY.
struct ShapeRow {
  const char* name;
  std::vector<mesh::Rule> rules;
  bool matches;  // connection 10.0.0.5 → 10.0.1.7:8080 from frontend
};

Match PortMatch(uint16_t p) {
  Match m;
  m.destination_ports = {p};
  return m;
}

std::vector<ShapeRow> ShapeRows() {
  const Match yes = PortMatch(8080), no = PortMatch(9090);
  using mesh::Clause;
  using mesh::Rule;
  return {
      {"zero rules", {}, false},
      {"one rule, zero clauses", {Rule{}}, true},
      {"one clause, zero matches", {Rule{{Clause{}}}}, true},
      {"one clause, one empty match", {Rule{{Clause{{Match{}}}}}}, false},
      {"one clause, two empty matches", {Rule{{Clause{{Match{}, Match{}}}}}}, false},
      {"empty match skipped, other true", {Rule{{Clause{{Match{}, yes}}}}}, true},
      {"empty match skipped, other false", {Rule{{Clause{{Match{}, no}}}}}, false},
      {"matches are OR-ed", {Rule{{Clause{{no, yes}}}}}, true},
      {"clauses are AND-ed", {Rule{{Clause{{yes}}, Clause{{no}}}}}, false},
      {"all-empty clause fails its rule", {Rule{{Clause{{yes}}, Clause{{Match{}}}}}}, false},
      {"zero-match clause beside a true one", {Rule{{Clause{}, Clause{{yes}}}}}, true},
      {"rules are OR-ed", {Rule{{Clause{{no}}}}, Rule{{Clause{{yes}}}}}, true},
      {"all-empty rule beside a true rule", {Rule{{Clause{{Match{}}}}}, Rule{{Clause{{yes}}}}},
       true},
      // istiod's encoding of `DENY to: [{operation: {paths: [/admin]}}]`.
      {"L7-only DENY as istiod sends it", {Rule{{Clause{{Match{}}}}}}, false},
  };
}

TEST_CASE("clause semantics: upstream truth table, reference and compiled") {
  const ConnectionInfo conn = Conn(&Frontend());
  const MatchInput in = MatchInput::From(conn);
  mesh::Workload w;
  w.ns = "default";
  for (const ShapeRow& row : ShapeRows()) {
    CAPTURE(row.name);
    mesh::Policy p;
    p.ns = "default";
    p.name = "p";
    p.rules = row.rules;
    CHECK(PolicyMatches(p, in) == row.matches);
    p.action = mesh::PolicyAction::kAllow;
    auto allow = AuthzIndex::Build(std::vector<mesh::Policy>{p});
    CHECK(Evaluate(*allow, w, conn).allow == row.matches);
    p.action = mesh::PolicyAction::kDeny;
    auto deny = AuthzIndex::Build(std::vector<mesh::Policy>{p});
    CHECK(Evaluate(*deny, w, conn).allow == !row.matches);
  }
}

}  // namespace
}  // namespace ambit::authz
