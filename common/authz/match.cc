#include "common/authz/match.h"

#include <algorithm>
#include <vector>

namespace ambit::authz {
namespace {

constexpr std::string_view kSpiffePrefix = "spiffe://";

// Positive list: empty → no constraint; otherwise any element must match.
// Negative list: empty → no constraint; otherwise no element may match.
template <typename T, typename Pred>
bool AnyOf(const std::vector<T>& list, Pred pred) {
  return std::any_of(list.begin(), list.end(), pred);
}

// A peer attribute that only exists with an identity: plaintext never
// satisfies a positive list and always satisfies a negative one.
bool PeerStrings(const std::vector<mesh::StringMatch>& pos,
                 const std::vector<mesh::StringMatch>& neg, bool has_identity,
                 std::string_view value) {
  auto hit = [value](const mesh::StringMatch& s) { return s.Matches(value); };
  if (!pos.empty() && (!has_identity || !AnyOf(pos, hit))) return false;
  if (!neg.empty() && has_identity && AnyOf(neg, hit)) return false;
  return true;
}

bool ServiceAccounts(const mesh::Match& m, const MatchInput& in) {
  auto hit = [&in](const mesh::ServiceAccountMatch& sa) {
    return sa.ns == in.peer_ns && sa.service_account == in.peer_sa;
  };
  if (!m.service_accounts.empty() && (!in.has_identity || !AnyOf(m.service_accounts, hit))) {
    return false;
  }
  if (!m.not_service_accounts.empty() && in.has_identity && AnyOf(m.not_service_accounts, hit)) {
    return false;
  }
  return true;
}

bool Cidrs(const std::vector<net::Cidr>& pos, const std::vector<net::Cidr>& neg,
           const net::IpAddress& ip) {
  auto hit = [&ip](const net::Cidr& c) { return CidrContains(c, ip); };
  if (!pos.empty() && !AnyOf(pos, hit)) return false;
  if (!neg.empty() && AnyOf(neg, hit)) return false;
  return true;
}

bool Ports(const std::vector<uint16_t>& pos, const std::vector<uint16_t>& neg, uint16_t port) {
  auto hit = [port](uint16_t p) { return p == port; };
  if (!pos.empty() && !AnyOf(pos, hit)) return false;
  if (!neg.empty() && AnyOf(neg, hit)) return false;
  return true;
}

}  // namespace

MatchInput MatchInput::From(const ConnectionInfo& conn) {
  MatchInput in;
  in.conn = &conn;
  if (conn.peer != nullptr) {
    in.has_identity = true;
    std::string_view uri = conn.peer->ToString();
    if (uri.starts_with(kSpiffePrefix)) uri.remove_prefix(kSpiffePrefix.size());
    in.principal = uri;
    in.peer_ns = conn.peer->ns();
    in.peer_sa = conn.peer->service_account();
  }
  return in;
}

bool CidrContains(const net::Cidr& cidr, const net::IpAddress& ip) {
  const net::IpAddress& base = cidr.address();
  if (base.family() != ip.family()) return false;
  const int bits = cidr.prefix_len();
  const auto& a = base.bytes();
  const auto& b = ip.bytes();
  const int full = bits / 8;
  for (int i = 0; i < full; ++i) {
    if (a[i] != b[i]) return false;
  }
  const int rest = bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

bool IsEmptyMatch(const mesh::Match& m) {
  return m.namespaces.empty() && m.not_namespaces.empty() && m.principals.empty() &&
         m.not_principals.empty() && m.source_ips.empty() && m.not_source_ips.empty() &&
         m.destination_ips.empty() && m.not_destination_ips.empty() &&
         m.destination_ports.empty() && m.not_destination_ports.empty() &&
         m.service_accounts.empty() && m.not_service_accounts.empty();
}

bool MatchMatches(const mesh::Match& m, const MatchInput& in) {
  const ConnectionInfo& c = *in.conn;
  return Ports(m.destination_ports, m.not_destination_ports, c.dst_port) &&
         Cidrs(m.source_ips, m.not_source_ips, c.src_ip) &&
         Cidrs(m.destination_ips, m.not_destination_ips, c.dst_ip) &&
         PeerStrings(m.principals, m.not_principals, in.has_identity, in.principal) &&
         PeerStrings(m.namespaces, m.not_namespaces, in.has_identity, in.peer_ns) &&
         ServiceAccounts(m, in);
}

bool ClauseMatches(const mesh::Clause& c, const MatchInput& in) {
  // Upstream rbac.rs: no Match at all → true; empty Matches are skipped and
  // never make the clause true, so a clause of only empty Matches is false.
  if (c.matches.empty()) return true;
  for (const mesh::Match& m : c.matches) {
    if (!IsEmptyMatch(m) && MatchMatches(m, in)) return true;
  }
  return false;
}

bool RuleMatches(const mesh::Rule& r, const MatchInput& in) {
  for (const mesh::Clause& c : r.clauses) {
    if (!ClauseMatches(c, in)) return false;
  }
  return true;
}

bool PolicyMatches(const mesh::Policy& p, const MatchInput& in) {
  for (const mesh::Rule& r : p.rules) {
    if (RuleMatches(r, in)) return true;
  }
  return false;
}

}  // namespace ambit::authz
