// L4 match semantics of ISTIO-COMPAT §7.3 over the agent/state Policy model.
// Pure functions, no allocation: the evaluator (evaluate.h) and tests use them.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/mesh/policy.h"
#include "common/identity/identity.h"
#include "common/net/address.h"

namespace ambit::authz {

// What the agent knows about an inbound connection when it authorizes it.
struct ConnectionInfo {
  net::IpAddress src_ip;     // TCP peer of the HBONE / plaintext connection
  net::IpAddress dst_ip;     // destination pod IP
  uint16_t dst_port = 0;     // target port after translation (never 15008)
  // Verified peer certificate identity; null for plaintext. Borrowed: must
  // outlive the evaluation.
  const identity::Identity* peer = nullptr;
};

// Per-evaluation view of the connection with the peer attributes split out
// once (principal = identity without "spiffe://").
struct MatchInput {
  const ConnectionInfo* conn = nullptr;
  bool has_identity = false;
  std::string_view principal;   // "td/ns/x/sa/y"
  std::string_view peer_ns;     // from the certificate, never from xDS
  std::string_view peer_sa;

  // Keeps a pointer to `conn`: it must outlive the MatchInput.
  static MatchInput From(const ConnectionInfo& conn);
  static MatchInput From(ConnectionInfo&&) = delete;
};

// CIDR containment on raw bytes (v4 and v6; families never mix).
bool CidrContains(const net::Cidr& cidr, const net::IpAddress& ip);

// True when every attribute list is empty (such Match objects never match).
bool IsEmptyMatch(const mesh::Match& m);

bool MatchMatches(const mesh::Match& m, const MatchInput& in);
// No Match at all → true; else any non-empty Match true (empty Matches are
// skipped, so a clause of only empty Matches is false, as upstream).
bool ClauseMatches(const mesh::Clause& c, const MatchInput& in);
// All clauses (zero clauses → true).
bool RuleMatches(const mesh::Rule& r, const MatchInput& in);
// Any rule (zero rules → never matches).
bool PolicyMatches(const mesh::Policy& p, const MatchInput& in);

}  // namespace ambit::authz
