#include "waypoint/app/authz_dump.h"

#include <fmt/format.h>

namespace ambit::waypoint {

namespace {

using nlohmann::json;
using route::AuthzAttr;
using route::AuthzString;

std::string_view AttrName(AuthzAttr a) {
  switch (a) {
    case AuthzAttr::kPrincipal: return "source.principal";
    case AuthzAttr::kNamespace: return "source.namespace";
    case AuthzAttr::kSourceIp: return "source.ip";
    case AuthzAttr::kRemoteIp: return "remote.ip";
    case AuthzAttr::kRequestPrincipal: return "request.auth.principal";
    case AuthzAttr::kHost: return "request.host";
    case AuthzAttr::kMethod: return "request.method";
    case AuthzAttr::kPath: return "request.path";
    case AuthzAttr::kDestinationPort: return "destination.port";
    case AuthzAttr::kDestinationIp: return "destination.ip";
    case AuthzAttr::kHeader: return "request.headers";
    case AuthzAttr::kSni: return "connection.sni";
  }
  return "?";
}

std::string StringText(const AuthzString& s) {
  switch (s.kind) {
    case AuthzString::Kind::kExact: return s.value;
    case AuthzString::Kind::kPrefix: return s.value + "*";
    case AuthzString::Kind::kSuffix: return "*" + s.value;
    case AuthzString::Kind::kPresence: return "*";
    case AuthzString::Kind::kAny: return "(any: unsupported value, stricter reading)";
    case AuthzString::Kind::kNever: return "(none: unsupported value, stricter reading)";
  }
  return "?";
}

json TestJson(const route::AuthzTest& t) {
  std::string attr(AttrName(t.attr));
  if (t.attr == AuthzAttr::kHeader) attr = fmt::format("request.headers[{}]", t.header);
  json values = json::array();
  for (const auto& s : t.strings) values.push_back(StringText(s));
  for (const auto& c : t.cidrs) values.push_back(c.ToString());
  for (uint16_t p : t.ports) values.push_back(p);
  return {{"attribute", attr}, {t.negative ? "notValues" : "values", values}};
}

json SetJson(const route::AuthzConfig& cfg, const route::AuthzSet& set) {
  auto keys = [&cfg](const std::vector<uint32_t>& list) {
    json a = json::array();
    for (uint32_t i : list) a.push_back(cfg.policies[i].key);
    return a;
  };
  return {{"deny", keys(set.deny)},         {"allow", keys(set.allow)},
          {"audit", keys(set.audit)},       {"dryRunDeny", keys(set.dry_deny)},
          {"dryRunAllow", keys(set.dry_allow)}};
}

}  // namespace

json AuthzJson(const route::AuthzConfig& cfg, const std::vector<std::string>& unbound) {
  json policies = json::array();
  for (const auto& p : cfg.policies) {
    json rules = json::array();
    for (const auto& r : p.rules) {
      json clauses = json::array();  // AND of OR-lists of AND-ed tests
      for (const auto& c : r.clauses) {
        json any = json::array();
        for (const auto& m : c.matches) {
          json all = json::array();
          for (const auto& t : m.tests) all.push_back(TestJson(t));
          any.push_back(all);
        }
        clauses.push_back(any);
      }
      rules.push_back(clauses);
    }
    policies.push_back({{"name", p.key},
                        {"source", p.source},
                        {"action", std::string(route::AuthzActionName(p.action))},
                        {"dryRun", p.dry_run},
                        {"boundTo", p.bound_to},
                        {"rules", rules}});
  }
  json services = json::object();
  for (const auto& [key, set] : cfg.by_service) {
    services[key.first + "/" + key.second] = SetJson(cfg, set);
  }
  return {{"waypointGateway", cfg.waypoint},
          {"policies", policies},
          {"waypointWide", SetJson(cfg, cfg.waypoint_wide)},
          {"services", services},
          {"unbound", unbound}};
}

}  // namespace ambit::waypoint
