// policies[]: L4 authorization policies in the ztunnel local-config shape.
#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>

#include "common/config/parse_sections.h"

namespace ambit::config {
namespace {

Status ParseStringMatches(const YamlReader& r, const YAML::Node& n, std::string_view path,
                          std::vector<StringMatchConfig>* out) {
  RETURN_IF_ERROR(r.ExpectSeq(n, path));
  for (size_t i = 0; i < n.size(); ++i) {
    std::string ipath = Idx(path, i);
    const YAML::Node e = n[i];
    if (!e.IsMap() || e.size() != 1) {
      return r.Error(e, ipath, "expected one of {Exact|Prefix|Suffix|Presence: ...}");
    }
    auto kv = *e.begin();
    int idx = 0;
    RETURN_IF_ERROR(r.ToEnum(kv.first, ipath, {"Exact", "Prefix", "Suffix", "Presence"}, &idx));
    StringMatchConfig m;
    m.kind = static_cast<StringMatchKind>(idx);
    if (m.kind != StringMatchKind::kPresence) {
      RETURN_IF_ERROR(r.ToString(kv.second, Sub(ipath, kv.first.Scalar()), &m.value));
    }
    out->push_back(std::move(m));
  }
  return absl::OkStatus();
}

Status ParseCidrs(const YamlReader& r, const YAML::Node& n, std::string_view path,
                  std::vector<CidrConfig>* out) {
  RETURN_IF_ERROR(r.ExpectSeq(n, path));
  for (size_t i = 0; i < n.size(); ++i) {
    std::string ipath = Idx(path, i);
    std::string text;
    RETURN_IF_ERROR(r.ToString(n[i], ipath, &text));
    CidrConfig c;
    size_t slash = text.find('/');
    c.ip = text.substr(0, slash);
    unsigned char buf[16];
    bool v4 = inet_pton(AF_INET, c.ip.c_str(), buf) == 1;
    if (!v4 && inet_pton(AF_INET6, c.ip.c_str(), buf) != 1) {
      return r.Error(n[i], ipath, fmt::format("'{}' is not an IP address or CIDR", text));
    }
    unsigned max = v4 ? 32 : 128, len = max;
    if (slash != std::string::npos) {
      std::string_view l = std::string_view(text).substr(slash + 1);
      auto [end, ec] = std::from_chars(l.data(), l.data() + l.size(), len);
      if (ec != std::errc() || end != l.data() + l.size() || l.empty() || len > max) {
        return r.Error(n[i], ipath, fmt::format("'{}' has an invalid prefix length", text));
      }
    }
    c.prefix_len = static_cast<uint8_t>(len);
    out->push_back(std::move(c));
  }
  return absl::OkStatus();
}

Status ParseSaMatches(const YamlReader& r, const YAML::Node& n, std::string_view path,
                      std::vector<ServiceAccountMatchConfig>* out) {
  RETURN_IF_ERROR(r.ExpectSeq(n, path));
  for (size_t i = 0; i < n.size(); ++i) {
    std::string ipath = Idx(path, i);
    RETURN_IF_ERROR(r.ExpectMap(n[i], ipath));
    RETURN_IF_ERROR(r.CheckKeys(n[i], ipath, {"namespace", "serviceAccount"}));
    ServiceAccountMatchConfig m;
    RETURN_IF_ERROR(r.ReqString(n[i], ipath, "namespace", &m.ns));
    RETURN_IF_ERROR(r.ReqString(n[i], ipath, "serviceAccount", &m.service_account));
    out->push_back(std::move(m));
  }
  return absl::OkStatus();
}

Status ParsePorts(const YamlReader& r, const YAML::Node& n, std::string_view path,
                  std::vector<uint16_t>* out) {
  RETURN_IF_ERROR(r.ExpectSeq(n, path));
  for (size_t i = 0; i < n.size(); ++i) {
    uint16_t p = 0;
    RETURN_IF_ERROR(r.ToPort(n[i], Idx(path, i), &p));
    out->push_back(p);
  }
  return absl::OkStatus();
}

Status ParseMatch(const YamlReader& r, const YAML::Node& n, std::string_view path,
                  MatchConfig* m) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(r.CheckKeys(
      n, path,
      {"namespaces", "notNamespaces", "principals", "notPrincipals", "serviceAccounts",
       "notServiceAccounts", "sourceIps", "notSourceIps", "destinationIps",
       "notDestinationIps", "destinationPorts", "notDestinationPorts"}));
  struct S { const char* key; std::vector<StringMatchConfig>* out; };
  for (S s : {S{"namespaces", &m->namespaces}, S{"notNamespaces", &m->not_namespaces},
              S{"principals", &m->principals}, S{"notPrincipals", &m->not_principals}}) {
    if (Has(n, s.key)) RETURN_IF_ERROR(ParseStringMatches(r, n[s.key], Sub(path, s.key), s.out));
  }
  struct C { const char* key; std::vector<CidrConfig>* out; };
  for (C c : {C{"sourceIps", &m->source_ips}, C{"notSourceIps", &m->not_source_ips},
              C{"destinationIps", &m->destination_ips},
              C{"notDestinationIps", &m->not_destination_ips}}) {
    if (Has(n, c.key)) RETURN_IF_ERROR(ParseCidrs(r, n[c.key], Sub(path, c.key), c.out));
  }
  if (Has(n, "serviceAccounts")) {
    RETURN_IF_ERROR(ParseSaMatches(r, n["serviceAccounts"], Sub(path, "serviceAccounts"),
                                   &m->service_accounts));
  }
  if (Has(n, "notServiceAccounts")) {
    RETURN_IF_ERROR(ParseSaMatches(r, n["notServiceAccounts"],
                                   Sub(path, "notServiceAccounts"), &m->not_service_accounts));
  }
  if (Has(n, "destinationPorts")) {
    RETURN_IF_ERROR(ParsePorts(r, n["destinationPorts"], Sub(path, "destinationPorts"),
                               &m->destination_ports));
  }
  if (Has(n, "notDestinationPorts")) {
    RETURN_IF_ERROR(ParsePorts(r, n["notDestinationPorts"], Sub(path, "notDestinationPorts"),
                               &m->not_destination_ports));
  }
  return absl::OkStatus();
}

// rules: list(rule) of list(clause) of list(match).
Status ParseRules(const YamlReader& r, const YAML::Node& n, std::string_view path,
                  std::vector<RuleConfig>* out) {
  RETURN_IF_ERROR(r.ExpectSeq(n, path));
  for (size_t i = 0; i < n.size(); ++i) {
    std::string rpath = Idx(path, i);
    RETURN_IF_ERROR(r.ExpectSeq(n[i], rpath));
    RuleConfig rule;
    for (size_t j = 0; j < n[i].size(); ++j) {
      std::string cpath = Idx(rpath, j);
      const YAML::Node clause_node = n[i][j];
      RETURN_IF_ERROR(r.ExpectSeq(clause_node, cpath));
      ClauseConfig clause;
      for (size_t k = 0; k < clause_node.size(); ++k) {
        MatchConfig m;
        RETURN_IF_ERROR(ParseMatch(r, clause_node[k], Idx(cpath, k), &m));
        clause.push_back(std::move(m));
      }
      rule.push_back(std::move(clause));
    }
    out->push_back(std::move(rule));
  }
  return absl::OkStatus();
}

}  // namespace

Status ParsePolicy(const YamlReader& r, const YAML::Node& n, std::string_view path,
                   PolicyConfig* out) {
  RETURN_IF_ERROR(r.ExpectMap(n, path));
  RETURN_IF_ERROR(
      r.CheckKeys(n, path, {"name", "namespace", "scope", "action", "dryRun", "rules"}));
  out->line = YamlReader::Line(n);
  RETURN_IF_ERROR(r.ReqString(n, path, "name", &out->name));
  RETURN_IF_ERROR(r.ReqString(n, path, "namespace", &out->ns));
  int idx = 0;
  if (Has(n, "scope")) {
    RETURN_IF_ERROR(r.ToEnum(n["scope"], Sub(path, "scope"),
                             {"Global", "Namespace", "WorkloadSelector"}, &idx));
    out->scope = static_cast<PolicyScope>(idx);
  }
  if (Has(n, "action")) {
    RETURN_IF_ERROR(r.ToEnum(n["action"], Sub(path, "action"), {"Allow", "Deny"}, &idx));
    out->action = static_cast<PolicyAction>(idx);
  }
  RETURN_IF_ERROR(r.OptBool(n, path, "dryRun", &out->dry_run));
  if (Has(n, "rules")) RETURN_IF_ERROR(ParseRules(r, n["rules"], Sub(path, "rules"), &out->rules));
  return absl::OkStatus();
}

}  // namespace ambit::config
