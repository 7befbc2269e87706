// Flat, cache-friendly form of a policy set for the evaluator. Policies,
// rules, clauses, matches and attribute tests live in contiguous arrays in
// build order, so scanning thousands of rules walks memory sequentially
// instead of chasing a few heap pointers per rule. Semantics are exactly
// those of match.h (§7.3); the unit tests cross-check both.
#pragma once

#include <cstdint>
#include <vector>

#include "common/authz/match.h"
#include "common/mesh/policy.h"

namespace ambit::authz {

class CompiledPolicies {
 public:
  // Appends `p` and returns its index. Empty Match objects are dropped,
  // clauses with no Match at all are dropped (true), clauses of only empty
  // Matches are kept with none (false, as upstream), and cheap clauses
  // (ports, IPs) are moved before string clauses (AND is commutative).
  // Policies whose every rule requires a port from a list get a port gate.
  uint32_t Add(const mesh::Policy& p);
  bool Matches(uint32_t policy, const MatchInput& in) const;
  size_t size() const { return policies_.size(); }

 private:
  enum Attr : uint8_t { kPort, kSrcIp, kDstIp, kPrincipal, kNamespace, kServiceAccount };
  struct Test {
    Attr attr;
    bool negative;
    uint32_t begin, end;  // range in the pool of `attr`
  };
  struct Range {
    uint32_t begin, end;
  };

  void AddMatch(const mesh::Match& m);
  template <typename T>
  void AddTest(Attr attr, bool negative, const std::vector<T>& values, std::vector<T>* pool);
  bool TestMatches(const Test& t, const MatchInput& in) const;
  bool RuleMatches(const Range& rule, const MatchInput& in) const;

  // Port gate: when every rule needs the destination port to be in some
  // positive list, the union of those ports (sorted) lets Matches() reject
  // a policy with one lookup instead of walking its rules.
  struct PolicyEntry {
    Range rules;
    Range gate;  // in gate_ports_
    bool gated = false;
  };
  static std::vector<uint16_t> RuleGate(const mesh::Rule& r, bool* gated);

  std::vector<PolicyEntry> policies_;
  std::vector<uint16_t> gate_ports_;
  std::vector<Range> rules_;     // → clauses_
  std::vector<Range> clauses_;   // → matches_
  std::vector<Range> matches_;   // → tests_
  std::vector<Test> tests_;
  std::vector<uint16_t> ports_;
  std::vector<net::Cidr> cidrs_;
  std::vector<mesh::StringMatch> strings_;
  std::vector<mesh::ServiceAccountMatch> accounts_;
};

}  // namespace ambit::authz
