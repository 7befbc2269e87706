#include "agent/authz/compiled.h"

#include <algorithm>

namespace ambit::authz {
namespace {

// Clauses whose matches test only ports and IPs are evaluated first.
int Cost(const state::Clause& c) {
  for (const state::Match& m : c.matches) {
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

void CompiledPolicies::AddMatch(const state::Match& m) {
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

uint32_t CompiledPolicies::Add(const state::Policy& p) {
  const auto rules_begin = static_cast<uint32_t>(rules_.size());
  for (const state::Rule& r : p.rules) {
    std::vector<const state::Clause*> order;
    for (const state::Clause& c : r.clauses) {
      if (std::any_of(c.matches.begin(), c.matches.end(),
                      [](const state::Match& m) { return !IsEmptyMatch(m); })) {
        order.push_back(&c);
      }
    }
    std::stable_sort(order.begin(), order.end(), [](const state::Clause* a, const state::Clause* b) {
      return Cost(*a) < Cost(*b);
    });
    const auto clauses_begin = static_cast<uint32_t>(clauses_.size());
    for (const state::Clause* c : order) {
      const auto matches_begin = static_cast<uint32_t>(matches_.size());
      for (const state::Match& m : c->matches) {
        if (!IsEmptyMatch(m)) AddMatch(m);
      }
      clauses_.push_back(Range{matches_begin, static_cast<uint32_t>(matches_.size())});
    }
    rules_.push_back(Range{clauses_begin, static_cast<uint32_t>(clauses_.size())});
  }
  policies_.push_back(Range{rules_begin, static_cast<uint32_t>(rules_.size())});
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
  const Range& p = policies_[policy];
  for (uint32_t r = p.begin; r < p.end; ++r) {
    if (RuleMatches(rules_[r], in)) return true;
  }
  return false;
}

}  // namespace ambit::authz
