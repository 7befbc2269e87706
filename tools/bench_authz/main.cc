// ambit-bench-authz: per-connection L4 authorization cost with a large
// applicable set (10,000 policies × 10 rules by default). Prints p50/p99 in
// µs per scenario; bounded in time (each scenario stops after --seconds or
// --iterations, whichever comes first). Never pass/fail.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/authz/evaluate.h"

namespace ambit::authz {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int policies = 10000;
  int rules = 10;
  double seconds = 3.0;  // per scenario
  int iterations = 2000;
};

mesh::StringMatch Exact(std::string v) { return {mesh::StringMatch::Kind::kExact, std::move(v)}; }

// A rule shaped like a translated Istio rule: to-clause (ports, optional),
// from-clause (principals and namespaces), one when-clause (source.ip).
mesh::Rule MakeRule(int p, int r, bool with_ports) {
  mesh::Match to;
  to.destination_ports = {static_cast<uint16_t>(1000 + (p * 7 + r) % 50000)};
  mesh::Match from;
  from.principals = {Exact(fmt::format("cluster.local/ns/ns-{}/sa/sa-{}", p, r))};
  from.namespaces = {Exact(fmt::format("ns-{}", p))};
  mesh::Match when;
  when.source_ips = {*net::Cidr::Parse(fmt::format("10.{}.{}.0/24", p % 250, r))};
  if (!with_ports) return mesh::Rule{{mesh::Clause{{from}}, mesh::Clause{{when}}}};
  return mesh::Rule{{mesh::Clause{{to}}, mesh::Clause{{from}}, mesh::Clause{{when}}}};
}

std::vector<mesh::Policy> MakePolicies(const Options& o, mesh::PolicyAction action,
                                        mesh::PolicyScope scope, bool with_ports = true) {
  std::vector<mesh::Policy> out;
  out.reserve(o.policies);
  for (int p = 0; p < o.policies; ++p) {
    mesh::Policy pol;
    pol.ns = "default";
    pol.name = fmt::format("policy-{}", p);
    pol.action = action;
    pol.scope = scope;
    for (int r = 0; r < o.rules; ++r) pol.rules.push_back(MakeRule(p, r, with_ports));
    out.push_back(std::move(pol));
  }
  return out;
}

struct Scenario {
  std::string name;
  std::vector<mesh::Policy> policies;
  mesh::Workload workload;
  bool expect_allow;
};

void Run(const Options& o, const Scenario& s, const ConnectionInfo& conn) {
  const auto build_start = Clock::now();
  auto index = AuthzIndex::Build(s.policies, std::span<const mesh::Workload>(&s.workload, 1));
  const double build_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - build_start).count();
  std::vector<double> us;
  us.reserve(o.iterations);
  const auto deadline = Clock::now() + std::chrono::duration<double>(o.seconds);
  bool wrong = false;
  while (static_cast<int>(us.size()) < o.iterations && Clock::now() < deadline) {
    const auto t0 = Clock::now();
    Decision d = index->Evaluate(s.workload, conn);
    const auto t1 = Clock::now();
    wrong = wrong || d.allow != s.expect_allow;
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  auto pct = [&us](double q) { return us[static_cast<size_t>(q * (us.size() - 1))]; };
  fmt::print("| {} | {} | {:.1f} | {} | {:.2f} | {:.2f} | {:.2f} |{}\n", s.name,
             index->policy_count(), build_ms, us.size(), pct(0.5), pct(0.99), us.back(),
             wrong ? " UNEXPECTED DECISION" : "");
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--policies") == 0) o.policies = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--rules") == 0) o.rules = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--seconds") == 0) o.seconds = std::atof(argv[i + 1]);
    else if (std::strcmp(argv[i], "--iterations") == 0) o.iterations = std::atoi(argv[i + 1]);
    else {
      fmt::print(stderr, "usage: ambit-bench-authz [--policies N] [--rules N] [--seconds S] "
                         "[--iterations N]\n");
      return 2;
    }
  }
  if (o.policies < 1 || o.rules < 1 || o.iterations < 1 || o.seconds <= 0) {
    fmt::print(stderr, "ambit-bench-authz: all options must be positive\n");
    return 2;
  }
  const identity::Identity peer =
      *identity::Identity::Parse("spiffe://cluster.local/ns/client/sa/client");
  ConnectionInfo conn;
  conn.src_ip = *net::IpAddress::Parse("10.44.3.9");
  conn.dst_ip = *net::IpAddress::Parse("10.45.0.7");
  conn.dst_port = 8080;
  conn.peer = &peer;

  mesh::Workload w;
  w.uid = "bench";
  w.name = "server";
  w.ns = "default";

  std::vector<Scenario> scenarios;
  // Worst case: every rule of every ALLOW is tried, nothing matches → deny.
  scenarios.push_back({"ALLOW, none matches (full scan)",
                       MakePolicies(o, mesh::PolicyAction::kAllow, mesh::PolicyScope::kNamespace),
                       w, false});
  // No port condition: no policy can be skipped by its port gate.
  scenarios.push_back({"ALLOW without ports, none matches",
                       MakePolicies(o, mesh::PolicyAction::kAllow, mesh::PolicyScope::kNamespace,
                                    false),
                       w, false});
  // Same size of DENY set, none matches, then no ALLOW → allow.
  scenarios.push_back({"DENY, none matches (full scan)",
                       MakePolicies(o, mesh::PolicyAction::kDeny, mesh::PolicyScope::kNamespace),
                       w, true});
  // Selector-scoped: every policy reached through a key of the workload.
  Scenario sel{"WORKLOAD_SELECTOR via keys, none matches",
               MakePolicies(o, mesh::PolicyAction::kAllow,
                            mesh::PolicyScope::kWorkloadSelector),
               w, false};
  for (const mesh::Policy& p : sel.policies) sel.workload.authorization_policies.push_back(p.Key());
  scenarios.push_back(std::move(sel));
  // Typical: the first ALLOW matches at once.
  Scenario first{"ALLOW, first policy matches",
                 MakePolicies(o, mesh::PolicyAction::kAllow, mesh::PolicyScope::kNamespace), w,
                 true};
  first.policies[0].rules.insert(first.policies[0].rules.begin(), mesh::Rule{});
  scenarios.push_back(std::move(first));

  fmt::print("ambit-bench-authz: {} policies x {} rules (ports, source, source.ip clauses) per "
             "applicable set\n\n",
             o.policies, o.rules);
  fmt::print("| scenario | policies | index build ms | evaluations | p50 µs | p99 µs | max µs |\n");
  fmt::print("|---|---|---|---|---|---|---|\n");
  for (const Scenario& s : scenarios) Run(o, s, conn);
  return 0;
}

}  // namespace
}  // namespace ambit::authz

int main(int argc, char** argv) { return ambit::authz::Main(argc, argv); }
