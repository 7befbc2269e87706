#include "common/authz/compiled.h"

#include <algorithm>

namespace ambit::authz {
namespace {

// Clauses whose matches test only ports and IPs are evaluated first.
int Cost(const mesh::Clause& c) {
  for (const mesh::Match& m : c.matches) {
    if (!m.principals.empty() || !m.not_principals.empty() || !m.namespaces.empty() ||
        !m.not_namespaces.empty() || !m.service_accounts.empty() ||
        !m.not_service_accounts.empty()) {
      return 1;
    }
  }
  return 0;
}

}  // namespace

template <typename T>
void CompiledPolicies::AddTest(Attr attr, bool negative, const std::vector<T>& values,
                               std::vector<T>* pool) {
  if (values.empty()) return;
  const auto begin = static_cast<uint32_t>(pool->size());
  pool->insert(pool->end(), values.begin(), values.end());
  tests_.push_back(Test{attr, negative, begin, static_cast<uint32_t>(pool->size())});
}

void CompiledPolicies::AddMatch(const mesh::Match& m) {
  const auto begin = static_cast<uint32_t>(tests_.size());
  AddTest(kPort, false, m.destination_ports, &ports_);
  AddTest(kPort, true, m.not_destination_ports, &ports_);
  AddTest(kSrcIp, false, m.source_ips, &cidrs_);
  AddTest(kSrcIp, true, m.not_source_ips, &cidrs_);
  AddTest(kDstIp, false, m.destination_ips, &cidrs_);
  AddTest(kDstIp, true, m.not_destination_ips, &cidrs_);
  AddTest(kPrincipal, false, m.principals, &strings_);
  AddTest(kPrincipal, true, m.not_principals, &strings_);
  AddTest(kNamespace, false, m.namespaces, &strings_);
  AddTest(kNamespace, true, m.not_namespaces, &strings_);
  AddTest(kServiceAccount, false, m.service_accounts, &accounts_);
  AddTest(kServiceAccount, true, m.not_service_accounts, &accounts_);
  matches_.push_back(Range{begin, static_cast<uint32_t>(tests_.size())});
}

std::vector<uint16_t> CompiledPolicies::RuleGate(const mesh::Rule& r, bool* gated) {
  // The smallest clause whose every non-empty Match lists positive ports.
  std::vector<uint16_t> best;
  *gated = false;
  for (const mesh::Clause& c : r.clauses) {
    std::vector<uint16_t> ports;
    bool all = false;
    for (const mesh::Match& m : c.matches) {
      if (IsEmptyMatch(m)) continue;
      if (m.destination_ports.empty()) {
        all = false;
        break;
      }
      all = true;
      ports.insert(ports.end(), m.destination_ports.begin(), m.destination_ports.end());
    }
    if (all && (!*gated || ports.size() < best.size())) {
      best = std::move(ports);
      *gated = true;
    }
  }
  return best;
}

uint32_t CompiledPolicies::Add(const mesh::Policy& p) {
  const auto rules_begin = static_cast<uint32_t>(rules_.size());
  PolicyEntry entry;
  entry.gated = !p.rules.empty();
  std::vector<uint16_t> gate;
  for (const mesh::Rule& r : p.rules) {
    bool rule_gated = false;
    std::vector<uint16_t> ports = RuleGate(r, &rule_gated);
    entry.gated = entry.gated && rule_gated;
    if (entry.gated) gate.insert(gate.end(), ports.begin(), ports.end());
    // A clause without Match is true: dropped. One whose Matches are all
    // empty stays with zero Matches and is false, as upstream.
    std::vector<const mesh::Clause*> order;
    for (const mesh::Clause& c : r.clauses) {
      if (!c.matches.empty()) order.push_back(&c);
    }
    std::stable_sort(order.begin(), order.end(), [](const mesh::Clause* a, const mesh::Clause* b) {
      return Cost(*a) < Cost(*b);
    });
    const auto clauses_begin = static_cast<uint32_t>(clauses_.size());
    for (const mesh::Clause* c : order) {
      const auto matches_begin = static_cast<uint32_t>(matches_.size());
      for (const mesh::Match& m : c->matches) {
        if (!IsEmptyMatch(m)) AddMatch(m);
      }
      clauses_.push_back(Range{matches_begin, static_cast<uint32_t>(matches_.size())});
    }
    rules_.push_back(Range{clauses_begin, static_cast<uint32_t>(clauses_.size())});
  }
  entry.rules = Range{rules_begin, static_cast<uint32_t>(rules_.size())};
  if (entry.gated) {
    std::sort(gate.begin(), gate.end());
    gate.erase(std::unique(gate.begin(), gate.end()), gate.end());
    const auto begin = static_cast<uint32_t>(gate_ports_.size());
    gate_ports_.insert(gate_ports_.end(), gate.begin(), gate.end());
    entry.gate = Range{begin, static_cast<uint32_t>(gate_ports_.size())};
  }
  policies_.push_back(entry);
  return static_cast<uint32_t>(policies_.size() - 1);
}

bool CompiledPolicies::TestMatches(const Test& t, const MatchInput& in) const {
  const ConnectionInfo& c = *in.conn;
  bool hit = false;
  switch (t.attr) {
    case kPort:
      for (uint32_t i = t.begin; i < t.end && !hit; ++i) hit = ports_[i] == c.dst_port;
      return hit != t.negative;
    case kSrcIp:
    case kDstIp: {
      const net::IpAddress& ip = t.attr == kSrcIp ? c.src_ip : c.dst_ip;
      for (uint32_t i = t.begin; i < t.end && !hit; ++i) hit = CidrContains(cidrs_[i], ip);
      return hit != t.negative;
    }
    case kPrincipal:
    case kNamespace: {
      // Peer attributes: plaintext fails positive lists, passes negative ones.
      if (!in.has_identity) return t.negative;
      const std::string_view v = t.attr == kPrincipal ? in.principal : in.peer_ns;
      for (uint32_t i = t.begin; i < t.end && !hit; ++i) hit = strings_[i].Matches(v);
      return hit != t.negative;
    }
    case kServiceAccount:
      if (!in.has_identity) return t.negative;
      for (uint32_t i = t.begin; i < t.end && !hit; ++i) {
        hit = accounts_[i].ns == in.peer_ns && accounts_[i].service_account == in.peer_sa;
      }
      return hit != t.negative;
  }
  return false;
}

bool CompiledPolicies::RuleMatches(const Range& rule, const MatchInput& in) const {
  for (uint32_t c = rule.begin; c < rule.end; ++c) {
    bool clause = false;
    for (uint32_t m = clauses_[c].begin; m < clauses_[c].end && !clause; ++m) {
      bool all = true;
      for (uint32_t t = matches_[m].begin; t < matches_[m].end && all; ++t) {
        all = TestMatches(tests_[t], in);
      }
      clause = all;
    }
    if (!clause) return false;
  }
  return true;
}

bool CompiledPolicies::Matches(uint32_t policy, const MatchInput& in) const {
  const PolicyEntry& p = policies_[policy];
  if (p.gated && !std::binary_search(gate_ports_.begin() + p.gate.begin,
                                     gate_ports_.begin() + p.gate.end, in.conn->dst_port)) {
    return false;
  }
  for (uint32_t r = p.rules.begin; r < p.rules.end; ++r) {
    if (RuleMatches(rules_[r], in)) return true;
  }
  return false;
}

}  // namespace ambit::authz
