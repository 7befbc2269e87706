#include <string>
#include <utility>

#include "common/mesh/xds_adapters/convert.h"
#include "common/mesh/xds_adapters/convert_util.h"

namespace ambit::xds_adapters {
namespace {

namespace pb = ::istio::security;
using google::protobuf::RepeatedField;
using google::protobuf::RepeatedPtrField;
using internal::Invalid;
using internal::Port;

StatusOr<std::vector<mesh::StringMatch>> ConvertStrings(
    const RepeatedPtrField<pb::StringMatch>& in, std::string_view what) {
  std::vector<mesh::StringMatch> out;
  for (const pb::StringMatch& m : in) {
    mesh::StringMatch sm;
    switch (m.match_type_case()) {
      case pb::StringMatch::kExact:
        sm = {mesh::StringMatch::Kind::kExact, m.exact()};
        break;
      case pb::StringMatch::kPrefix:
        sm = {mesh::StringMatch::Kind::kPrefix, m.prefix()};
        break;
      case pb::StringMatch::kSuffix:
        sm = {mesh::StringMatch::Kind::kSuffix, m.suffix()};
        break;
      case pb::StringMatch::kPresence:
        sm = {mesh::StringMatch::Kind::kPresence, ""};
        break;
      default:
        return Invalid(what, "a StringMatch has no exact, prefix, suffix or presence");
    }
    out.push_back(std::move(sm));
  }
  return out;
}

StatusOr<std::vector<net::Cidr>> ConvertCidrs(const RepeatedPtrField<pb::Address>& in,
                                              std::string_view what) {
  std::vector<net::Cidr> out;
  for (const pb::Address& a : in) {
    ASSIGN_OR_RETURN(net::IpAddress ip, IpFromBytes(a.address(), what));
    StatusOr<net::Cidr> cidr = net::Cidr::Make(ip, static_cast<int>(a.length()));
    if (!cidr.ok()) return Invalid(what, std::string(cidr.status().message()));
    out.push_back(*cidr);
  }
  return out;
}

StatusOr<std::vector<uint16_t>> ConvertPortList(const RepeatedField<uint32_t>& in,
                                                std::string_view what) {
  std::vector<uint16_t> out;
  for (uint32_t p : in) {
    ASSIGN_OR_RETURN(uint16_t port, Port(p, what));
    out.push_back(port);
  }
  return out;
}

std::vector<mesh::ServiceAccountMatch> ConvertAccounts(
    const RepeatedPtrField<pb::ServiceAccountMatch>& in) {
  std::vector<mesh::ServiceAccountMatch> out;
  for (const pb::ServiceAccountMatch& m : in) out.push_back({m.namespace_(), m.serviceaccount()});
  return out;
}

StatusOr<mesh::Match> ConvertMatch(const pb::Match& m) {
  mesh::Match out;
  ASSIGN_OR_RETURN(out.namespaces, ConvertStrings(m.namespaces(), "namespaces"));
  ASSIGN_OR_RETURN(out.not_namespaces, ConvertStrings(m.not_namespaces(), "not_namespaces"));
  ASSIGN_OR_RETURN(out.principals, ConvertStrings(m.principals(), "principals"));
  ASSIGN_OR_RETURN(out.not_principals, ConvertStrings(m.not_principals(), "not_principals"));
  ASSIGN_OR_RETURN(out.source_ips, ConvertCidrs(m.source_ips(), "source_ips"));
  ASSIGN_OR_RETURN(out.not_source_ips, ConvertCidrs(m.not_source_ips(), "not_source_ips"));
  ASSIGN_OR_RETURN(out.destination_ips, ConvertCidrs(m.destination_ips(), "destination_ips"));
  ASSIGN_OR_RETURN(out.not_destination_ips,
                   ConvertCidrs(m.not_destination_ips(), "not_destination_ips"));
  ASSIGN_OR_RETURN(out.destination_ports,
                   ConvertPortList(m.destination_ports(), "destination_ports"));
  ASSIGN_OR_RETURN(out.not_destination_ports,
                   ConvertPortList(m.not_destination_ports(), "not_destination_ports"));
  out.service_accounts = ConvertAccounts(m.service_accounts());
  out.not_service_accounts = ConvertAccounts(m.not_service_accounts());
  return out;
}

}  // namespace

StatusOr<mesh::Policy> ConvertAuthorization(const pb::Authorization& a) {
  if (a.name().empty() || a.namespace_().empty()) {
    return Invalid("authorization", "name and namespace must both be set");
  }
  mesh::Policy out;
  out.name = a.name();
  out.ns = a.namespace_();
  switch (a.scope()) {
    case pb::GLOBAL:
      out.scope = mesh::PolicyScope::kGlobal;
      break;
    case pb::NAMESPACE:
      out.scope = mesh::PolicyScope::kNamespace;
      break;
    case pb::WORKLOAD_SELECTOR:
      out.scope = mesh::PolicyScope::kWorkloadSelector;
      break;
    default:
      return Invalid("scope", "unknown value " + std::to_string(a.scope()));
  }
  switch (a.action()) {
    case pb::ALLOW:
      out.action = mesh::PolicyAction::kAllow;
      break;
    case pb::DENY:
      out.action = mesh::PolicyAction::kDeny;
      break;
    default:
      return Invalid("action", "unknown value " + std::to_string(a.action()));
  }
  out.dry_run = a.dry_run();
  for (const pb::Rule& r : a.rules()) {
    mesh::Rule rule;
    for (const pb::Clause& c : r.clauses()) {
      mesh::Clause clause;
      for (const pb::Match& m : c.matches()) {
        ASSIGN_OR_RETURN(mesh::Match match, ConvertMatch(m));
        clause.matches.push_back(std::move(match));
      }
      rule.clauses.push_back(std::move(clause));
    }
    out.rules.push_back(std::move(rule));
  }
  return out;
}

}  // namespace ambit::xds_adapters
