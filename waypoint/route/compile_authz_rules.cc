// AuthorizationPolicy `rules[]` → AuthzRule: one clause from from[], one
// from to[], one per when[] (authz.h). Values Istio's validation refuses
// (bad CIDRs or ports, empty source/operation, unknown keys) are invalid
// findings: the config change is rejected. What the waypoint cannot
// evaluate yet is reported and replaced so the policy only gets stricter.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "common/base/ascii.h"
#include "waypoint/route/compile_authz.h"
#include "waypoint/route/compile_util.h"

namespace ambit::waypoint::route::internal {

namespace {

struct FieldSpec {
  std::string_view name;
  AuthzAttr attr;
  bool negative;
};

constexpr FieldSpec kSourceFields[] = {
    {"principals", AuthzAttr::kPrincipal, false},
    {"notPrincipals", AuthzAttr::kPrincipal, true},
    {"namespaces", AuthzAttr::kNamespace, false},
    {"notNamespaces", AuthzAttr::kNamespace, true},
    {"ipBlocks", AuthzAttr::kSourceIp, false},
    {"notIpBlocks", AuthzAttr::kSourceIp, true},
    {"remoteIpBlocks", AuthzAttr::kRemoteIp, false},
    {"notRemoteIpBlocks", AuthzAttr::kRemoteIp, true},
    {"requestPrincipals", AuthzAttr::kRequestPrincipal, false},
    {"notRequestPrincipals", AuthzAttr::kRequestPrincipal, true},
    {"serviceAccounts", AuthzAttr::kPrincipal, false},
    {"notServiceAccounts", AuthzAttr::kPrincipal, true},
};

constexpr FieldSpec kOperationFields[] = {
    {"hosts", AuthzAttr::kHost, false},
    {"notHosts", AuthzAttr::kHost, true},
    {"ports", AuthzAttr::kDestinationPort, false},
    {"notPorts", AuthzAttr::kDestinationPort, true},
    {"methods", AuthzAttr::kMethod, false},
    {"notMethods", AuthzAttr::kMethod, true},
    {"paths", AuthzAttr::kPath, false},
    {"notPaths", AuthzAttr::kPath, true},
};

constexpr std::string_view kNoJwt =
    "RequestAuthentication (JWT) is not supported yet: requests carry no request principal or "
    "claims, so positive lists never match and negative lists always do";

AuthzString Wildcard(std::string_view v, bool ignore_case) {
  AuthzString s;
  s.ignore_case = ignore_case;
  if (v == "*") {
    s.kind = AuthzString::Kind::kPresence;
  } else if (v.size() > 1 && v.front() == '*') {
    s.kind = AuthzString::Kind::kSuffix;
    s.value = std::string(v.substr(1));
  } else if (v.size() > 1 && v.back() == '*') {
    s.kind = AuthzString::Kind::kPrefix;
    s.value = std::string(v.substr(0, v.size() - 1));
  } else {
    s.value = std::string(v);
  }
  return s;
}

class RuleCompiler {
 public:
  RuleCompiler(const Doc& doc, bool deny_like, Sink& sink)
      : doc_(doc), deny_like_(deny_like), sink_(sink) {}

  // One from[]/to[] element → its match; nullopt when invalid (reported).
  std::optional<AuthzMatch> Element(const YAML::Node& n, const std::string& path,
                                    std::span<const FieldSpec> fields);
  std::optional<AuthzMatch> Condition(const YAML::Node& n, const std::string& path);
  std::optional<AuthzClause> Alternatives(const YAML::Node& list, const std::string& path,
                                          std::string_view inner,
                                          std::span<const FieldSpec> fields);
  bool ok() const { return ok_; }

 private:
  void Invalid(const YAML::Node& at, std::string msg) {
    sink_.Invalid(doc_, at, std::move(msg));
    ok_ = false;
  }
  // Fills t's value list from `values` for t.attr; false when invalid.
  bool Values(const YAML::Node& values, const std::string& path, AuthzTest* t);
  // A value we cannot evaluate: stands in so the policy only gets stricter.
  AuthzString Strict(bool negative) const {
    AuthzString s;
    const bool match_more = deny_like_ != negative;
    s.kind = match_more ? AuthzString::Kind::kAny : AuthzString::Kind::kNever;
    return s;
  }

  const Doc& doc_;
  bool deny_like_;
  Sink& sink_;
  bool ok_ = true;
};

bool RuleCompiler::Values(const YAML::Node& values, const std::string& path, AuthzTest* t) {
  if (!values.IsSequence()) {
    Invalid(values, path + ": expected a list of strings");
    return false;
  }
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string item = Field(path, i);
    if (!values[i].IsScalar()) {
      Invalid(values[i], item + ": expected a string");
      return false;
    }
    const std::string v = values[i].Scalar();
    switch (t->attr) {
      case AuthzAttr::kSourceIp:
      case AuthzAttr::kRemoteIp:
      case AuthzAttr::kDestinationIp: {
        auto c = net::Cidr::Parse(v);
        if (!c.ok()) {
          Invalid(values[i], fmt::format("{}: '{}' is not an IP address or CIDR", item, v));
          return false;
        }
        t->cidrs.push_back(*c);
        break;
      }
      case AuthzAttr::kDestinationPort: {
        unsigned port = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
        if (ec != std::errc() || p != v.data() + v.size() || port > 65535) {
          Invalid(values[i], fmt::format("{}: '{}' is not a port number (0-65535)", item, v));
          return false;
        }
        t->ports.push_back(static_cast<uint16_t>(port));
        break;
      }
      case AuthzAttr::kPath:
        if (v.find('{') != std::string::npos) {
          sink_.Add(doc_, values[i],
                    fmt::format("{}: path templates ('{{*}}', '{{**}}') are not supported yet; "
                                "'{}' is treated as matching {} (the stricter reading)",
                                item, v,
                                Strict(t->negative).kind == AuthzString::Kind::kAny ? "every path"
                                                                                    : "no path"));
          t->strings.push_back(Strict(t->negative));
          break;
        }
        t->strings.push_back(Wildcard(v, false));
        break;
      case AuthzAttr::kHost:
        t->strings.push_back(Wildcard(v, true));
        break;
      default:
        t->strings.push_back(Wildcard(v, false));
        break;
    }
  }
  return true;
}

std::optional<AuthzMatch> RuleCompiler::Element(const YAML::Node& n, const std::string& path,
                                                std::span<const FieldSpec> fields) {
  if (!n.IsMap() || n.size() == 0) {
    Invalid(n, path + ": must be a non-empty map (Istio rejects an empty one)");
    return std::nullopt;
  }
  AuthzMatch m;
  for (const auto& kv : n) {
    const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    const std::string field = Field(path, name);
    auto spec = std::find_if(fields.begin(), fields.end(),
                             [&](const FieldSpec& f) { return f.name == name; });
    if (spec == fields.end()) {
      Invalid(kv.first, field + ": unknown field");
      continue;
    }
    AuthzTest t;
    t.attr = spec->attr;
    t.negative = spec->negative;
    if (name == "serviceAccounts" || name == "notServiceAccounts") {
      // "ns/sa" (a bare "sa": the policy's namespace) names the principal
      // "<any trust domain>/ns/<ns>/sa/<sa>".
      if (!kv.second.IsSequence()) {
        Invalid(kv.second, field + ": expected a list of strings");
        continue;
      }
      for (size_t i = 0; i < kv.second.size(); ++i) {
        const YAML::Node v = kv.second[i];
        if (!v.IsScalar() || v.Scalar().empty()) {
          Invalid(v, Field(field, i) + ": expected \"namespace/serviceaccount\"");
          continue;
        }
        std::string text = v.Scalar();
        const size_t slash = text.find('/');
        const std::string ns = slash == std::string::npos ? doc_.ns : text.substr(0, slash);
        const std::string sa = slash == std::string::npos ? text : text.substr(slash + 1);
        AuthzString s;
        s.kind = AuthzString::Kind::kSuffix;
        s.value = fmt::format("/ns/{}/sa/{}", ns, sa);
        t.strings.push_back(std::move(s));
      }
    } else if (!Values(kv.second, field, &t)) {
      continue;
    }
    if (t.attr == AuthzAttr::kRequestPrincipal)
      sink_.Add(doc_, kv.first, field + ": " + std::string(kNoJwt));
    m.tests.push_back(std::move(t));
  }
  return m;
}

std::optional<AuthzMatch> RuleCompiler::Condition(const YAML::Node& n, const std::string& path) {
  if (!n.IsMap() || !Child(n, "key").IsScalar()) {
    Invalid(n, path + ": expected a map with a string 'key'");
    return std::nullopt;
  }
  if (!RejectUnknownKeys(doc_, n, path, {"key", "values", "notValues"}, sink_)) ok_ = false;
  const YAML::Node key_n = Child(n, "key");
  const std::string key = key_n.Scalar();
  AuthzTest t;
  if (key.starts_with("request.headers[") && key.ends_with("]") && key.size() > 17) {
    t.attr = AuthzAttr::kHeader;
    t.header = base::ToLower(std::string_view(key).substr(16, key.size() - 17));
  } else if (key == "source.ip") {
    t.attr = AuthzAttr::kSourceIp;
  } else if (key == "remote.ip") {
    t.attr = AuthzAttr::kRemoteIp;
  } else if (key == "source.namespace") {
    t.attr = AuthzAttr::kNamespace;
  } else if (key == "source.principal") {
    t.attr = AuthzAttr::kPrincipal;
  } else if (key == "destination.ip") {
    t.attr = AuthzAttr::kDestinationIp;
  } else if (key == "destination.port") {
    t.attr = AuthzAttr::kDestinationPort;
  } else if (key == "connection.sni") {
    t.attr = AuthzAttr::kSni;
    sink_.Add(doc_, key_n,
              path +
                  ".key: connection.sni: the waypoint reads plaintext HTTP inside HBONE, "
                  "which has no SNI; values never match and notValues always do");
  } else if (key.starts_with("request.auth.")) {
    t.attr = AuthzAttr::kRequestPrincipal;
    sink_.Add(doc_, key_n, fmt::format("{}.key: {}: {}", path, key, kNoJwt));
  } else {
    Invalid(key_n, fmt::format("{}.key: '{}' is not a supported attribute (request.headers[...], "
                               "source.ip, remote.ip, source.namespace, source.principal, "
                               "destination.ip, destination.port, connection.sni, request.auth.*)",
                               path, key));
    return std::nullopt;
  }
  const YAML::Node values = Child(n, "values"), not_values = Child(n, "notValues");
  if (!Present(values) && !Present(not_values)) {
    Invalid(n, path + ": one of values or notValues is required");
    return std::nullopt;
  }
  AuthzMatch m;
  if (Present(values)) {
    AuthzTest pos = t;
    if (!Values(values, Field(path, "values"), &pos)) return std::nullopt;
    m.tests.push_back(std::move(pos));
  }
  if (Present(not_values)) {
    AuthzTest neg = t;
    neg.negative = true;
    if (!Values(not_values, Field(path, "notValues"), &neg)) return std::nullopt;
    m.tests.push_back(std::move(neg));
  }
  return m;
}

std::optional<AuthzClause> RuleCompiler::Alternatives(const YAML::Node& list,
                                                      const std::string& path,
                                                      std::string_view inner,
                                                      std::span<const FieldSpec> fields) {
  if (!list.IsSequence()) {
    Invalid(list, path + ": expected a list");
    return std::nullopt;
  }
  AuthzClause clause;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item = Field(path, i);
    const YAML::Node n = list[i];
    if (!n.IsMap()) {
      Invalid(n, item + ": expected a map");
      continue;
    }
    if (!RejectUnknownKeys(doc_, n, item, {inner}, sink_)) ok_ = false;
    auto m = Element(Child(n, inner), Field(item, inner), fields);
    if (m) clause.matches.push_back(std::move(*m));
  }
  return clause;
}

}  // namespace

bool RejectUnknownKeys(const Doc& doc, const YAML::Node& n, std::string_view path,
                       std::initializer_list<std::string_view> known, Sink& sink) {
  if (!n.IsDefined() || !n.IsMap()) return true;
  bool ok = true;
  for (const auto& kv : n) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    sink.Invalid(doc, kv.first, Field(path, key) + ": unknown field");
    ok = false;
  }
  return ok;
}

std::optional<AuthzRule> CompileAuthzRule(const Doc& doc, const YAML::Node& rule,
                                          const std::string& path, bool deny_like, Sink& sink) {
  RuleCompiler c(doc, deny_like, sink);
  AuthzRule out;
  if (rule.IsNull()) return out;  // `- ` : an empty rule matches every request
  if (!rule.IsMap()) {
    sink.Invalid(doc, rule, path + ": expected a map");
    return std::nullopt;
  }
  if (!RejectUnknownKeys(doc, rule, path, {"from", "to", "when"}, sink)) return std::nullopt;
  if (const YAML::Node from = Child(rule, "from"); Present(from)) {
    auto cl = c.Alternatives(from, Field(path, "from"), "source", kSourceFields);
    if (cl && !cl->matches.empty()) out.clauses.push_back(std::move(*cl));
  }
  if (const YAML::Node to = Child(rule, "to"); Present(to)) {
    auto cl = c.Alternatives(to, Field(path, "to"), "operation", kOperationFields);
    if (cl && !cl->matches.empty()) out.clauses.push_back(std::move(*cl));
  }
  if (const YAML::Node when = Child(rule, "when"); Present(when)) {
    if (!when.IsSequence()) {
      sink.Invalid(doc, when, Field(path, "when") + ": expected a list");
      return std::nullopt;
    }
    for (size_t i = 0; i < when.size(); ++i) {
      auto m = c.Condition(when[i], Field(Field(path, "when"), i));
      if (m) out.clauses.push_back(AuthzClause{{std::move(*m)}});
    }
  }
  if (!c.ok()) return std::nullopt;
  for (const AuthzClause& cl : out.clauses) {
    for (const AuthzMatch& m : cl.matches) {
      for (const AuthzTest& t : m.tests) out.http = out.http || IsHttpAttr(t.attr);
    }
  }
  return out;
}

}  // namespace ambit::waypoint::route::internal
