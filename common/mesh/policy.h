// L4 authorization policy data model (ISTIO-COMPAT §5.3 / §7). Evaluation
// lives in agent/authz; this is only the data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/net/address.h"

namespace ambit::mesh {

enum class PolicyScope : uint8_t { kGlobal, kNamespace, kWorkloadSelector };
enum class PolicyAction : uint8_t { kAllow, kDeny };

struct StringMatch {
  enum class Kind : uint8_t { kExact, kPrefix, kSuffix, kPresence };
  Kind kind = Kind::kExact;
  std::string value;  // unused for presence

  bool Matches(std::string_view s) const {
    switch (kind) {
      case Kind::kExact: return s == value;
      case Kind::kPrefix: return s.starts_with(value);
      case Kind::kSuffix: return s.ends_with(value);
      case Kind::kPresence: return !s.empty();
    }
    return false;
  }
};

struct ServiceAccountMatch {
  std::string ns, service_account;
};

struct Match {
  std::vector<StringMatch> namespaces, not_namespaces;
  std::vector<StringMatch> principals, not_principals;
  std::vector<net::Cidr> source_ips, not_source_ips;
  std::vector<net::Cidr> destination_ips, not_destination_ips;
  std::vector<uint16_t> destination_ports, not_destination_ports;
  std::vector<ServiceAccountMatch> service_accounts, not_service_accounts;
};

struct Clause {
  std::vector<Match> matches;  // OR
};

struct Rule {
  std::vector<Clause> clauses;  // AND
};

struct Policy {
  std::string name, ns;
  PolicyScope scope = PolicyScope::kNamespace;
  PolicyAction action = PolicyAction::kAllow;
  bool dry_run = false;
  std::vector<Rule> rules;  // OR

  std::string Key() const { return ns + "/" + name; }
};

}  // namespace ambit::mesh
