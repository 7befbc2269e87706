// AuthorizationPolicy `rules[]` → mesh::Rule (ISTIO-COMPAT §7.4): one clause
// from to[], one from from[], one per when[], encoded as istiod encodes them.
// Anything not enforceable at L4 drops an ALLOW rule. In a DENY rule, L7
// fields are left out of their element: one left with no L4 field becomes an
// empty Match, which never matches (ztunnel skips empty matches), so an
// L7-only DENY denies nothing at L4. Malformed parts fail closed instead.
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "common/authz/match.h"
#include "common/authz/translate_internal.h"

namespace ambit::authz::internal {
namespace {

constexpr std::array<std::string_view, 4> kL7Source = {
    "requestPrincipals", "notRequestPrincipals", "remoteIpBlocks", "notRemoteIpBlocks"};
constexpr std::array<std::string_view, 6> kL7Operation = {"hosts", "notHosts", "methods",
                                                          "notMethods", "paths", "notPaths"};

template <size_t N>
bool In(const std::array<std::string_view, N>& set, std::string_view v) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

class RuleBuilder {
 public:
  RuleBuilder(bool deny, std::string_view policy_ns) : deny_(deny), policy_ns_(policy_ns) {}

  // The element's Match, empty when it held only L7 fields (never matches);
  // nullopt when it is malformed or empty (reported; the clause turns true).
  std::optional<mesh::Match> Source(const YAML::Node& src, const std::string& path);
  std::optional<mesh::Match> Operation(const YAML::Node& op, const std::string& path);
  std::optional<mesh::Match> Condition(const YAML::Node& cond, const std::string& path);
  // from[] / to[] → clause; nullopt when a malformed element made it true.
  template <typename Fn>
  std::optional<mesh::Clause> Alternatives(const YAML::Node& list, const std::string& path,
                                            const char* inner, Fn element);

  void L7(std::string name) {
    if (std::find(l7_.begin(), l7_.end(), name) == l7_.end()) l7_.push_back(std::move(name));
  }
  void Error(std::string text) { errors_.push_back(std::move(text)); }
  const std::vector<std::string>& l7() const { return l7_; }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  Status SourceField(std::string_view name, const YAML::Node& v, const std::string& path,
                     mesh::Match* m);
  // What an element turns into once its fields are read (see Source()).
  std::optional<mesh::Match> Finish(mesh::Match&& m, bool l7, const std::string& path);
  bool deny_;
  std::string_view policy_ns_;
  std::vector<std::string> l7_, errors_;
};

Status AddStrings(const YAML::Node& v, const std::string& path, std::vector<mesh::StringMatch>* out) {
  ASSIGN_OR_RETURN(auto list, StringList(v, path));
  for (const std::string& s : list) out->push_back(Wildcard(s));
  return absl::OkStatus();
}

Status AddCidrs(const YAML::Node& v, const std::string& path, std::vector<net::Cidr>* out) {
  ASSIGN_OR_RETURN(auto list, StringList(v, path));
  std::vector<net::Cidr> parsed;
  for (const std::string& s : list) {
    ASSIGN_OR_RETURN(net::Cidr c, ParseCidr(s, path));
    parsed.push_back(c);
  }
  out->insert(out->end(), parsed.begin(), parsed.end());
  return absl::OkStatus();
}

Status AddPorts(const YAML::Node& v, const std::string& path, std::vector<uint16_t>* out) {
  ASSIGN_OR_RETURN(auto list, StringList(v, path));
  std::vector<uint16_t> parsed;
  for (const std::string& s : list) {
    ASSIGN_OR_RETURN(uint16_t p, ParsePort(s, path));
    parsed.push_back(p);
  }
  out->insert(out->end(), parsed.begin(), parsed.end());
  return absl::OkStatus();
}

Status RuleBuilder::SourceField(std::string_view name, const YAML::Node& v,
                                const std::string& path, mesh::Match* m) {
  if (name == "principals") return AddStrings(v, path, &m->principals);
  if (name == "notPrincipals") return AddStrings(v, path, &m->not_principals);
  if (name == "namespaces") return AddStrings(v, path, &m->namespaces);
  if (name == "notNamespaces") return AddStrings(v, path, &m->not_namespaces);
  if (name == "ipBlocks") return AddCidrs(v, path, &m->source_ips);
  if (name == "notIpBlocks") return AddCidrs(v, path, &m->not_source_ips);
  if (name == "serviceAccounts" || name == "notServiceAccounts") {
    ASSIGN_OR_RETURN(auto list, StringList(v, path));
    std::vector<mesh::ServiceAccountMatch> parsed;
    for (const std::string& s : list) {
      ASSIGN_OR_RETURN(auto sa, ParseServiceAccount(s, policy_ns_, path));
      parsed.push_back(std::move(sa));
    }
    auto& out = name == "serviceAccounts" ? m->service_accounts : m->not_service_accounts;
    out.insert(out.end(), parsed.begin(), parsed.end());
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(fmt::format("{}: unknown field", path));
}

std::optional<mesh::Match> RuleBuilder::Finish(mesh::Match&& m, bool l7,
                                               const std::string& path) {
  if (!IsEmptyMatch(m) || l7) return std::move(m);
  Error(fmt::format("{}: must not be empty (istiod rejects it)", path));
  return std::nullopt;
}

std::optional<mesh::Match> RuleBuilder::Source(const YAML::Node& src, const std::string& path) {
  mesh::Match m;
  if (src.IsDefined() && !src.IsNull() && !src.IsMap()) {
    Error(fmt::format("{}: expected a map", path));
    return std::nullopt;
  }
  bool l7 = false;
  const size_t errors = errors_.size();
  if (src.IsMap()) {
    for (const auto& kv : src) {
      const std::string name = kv.first.Scalar();
      if (In(kL7Source, name)) {
        L7(name);
        l7 = true;
        continue;
      }
      Status st = SourceField(name, kv.second, path + "." + name, &m);
      if (!st.ok()) Error(std::string(st.message()));
    }
  }
  if (errors_.size() != errors && IsEmptyMatch(m)) return std::nullopt;
  return Finish(std::move(m), l7, path);
}

std::optional<mesh::Match> RuleBuilder::Operation(const YAML::Node& op,
                                                   const std::string& path) {
  mesh::Match m;
  if (op.IsDefined() && !op.IsNull() && !op.IsMap()) {
    Error(fmt::format("{}: expected a map", path));
    return std::nullopt;
  }
  bool l7 = false;
  const size_t errors = errors_.size();
  if (op.IsMap()) {
    for (const auto& kv : op) {
      const std::string name = kv.first.Scalar();
      const std::string field = path + "." + name;
      Status st;
      if (In(kL7Operation, name)) {
        L7(name);
        l7 = true;
      } else if (name == "ports") {
        st = AddPorts(kv.second, field, &m.destination_ports);
      } else if (name == "notPorts") {
        st = AddPorts(kv.second, field, &m.not_destination_ports);
      } else {
        st = absl::InvalidArgumentError(fmt::format("{}: unknown field", field));
      }
      if (!st.ok()) Error(std::string(st.message()));
    }
  }
  if (errors_.size() != errors && IsEmptyMatch(m)) return std::nullopt;
  return Finish(std::move(m), l7, path);
}

// `when` keys the agent can check at L4, with the Match lists they fill.
Status ConditionValues(std::string_view key, const YAML::Node& v, const std::string& path,
                       bool negative, mesh::Match* m) {
  if (key == "source.ip") return AddCidrs(v, path, negative ? &m->not_source_ips : &m->source_ips);
  if (key == "destination.ip") {
    return AddCidrs(v, path, negative ? &m->not_destination_ips : &m->destination_ips);
  }
  if (key == "destination.port") {
    return AddPorts(v, path, negative ? &m->not_destination_ports : &m->destination_ports);
  }
  if (key == "source.namespace") {
    return AddStrings(v, path, negative ? &m->not_namespaces : &m->namespaces);
  }
  return AddStrings(v, path, negative ? &m->not_principals : &m->principals);  // source.principal
}

bool IsL4ConditionKey(std::string_view key) {
  return key == "source.ip" || key == "destination.ip" || key == "destination.port" ||
         key == "source.namespace" || key == "source.principal";
}

std::optional<mesh::Match> RuleBuilder::Condition(const YAML::Node& cond,
                                                   const std::string& path) {
  if (!cond.IsMap() || !Child(cond, "key").IsScalar()) {
    Error(fmt::format("{}: expected a map with a string 'key'", path));
    return std::nullopt;
  }
  const std::string key = Child(cond, "key").Scalar();
  if (!IsL4ConditionKey(key)) {
    L7("when key " + key);
    return mesh::Match{};  // istiod: a clause of one empty Match, never true
  }
  mesh::Match m;
  const size_t errors = errors_.size();
  for (const auto& kv : cond) {
    const std::string name = kv.first.Scalar();
    if (name == "key") continue;
    const std::string field = path + "." + name;
    Status st;
    if (name == "values" || name == "notValues") {
      st = ConditionValues(key, kv.second, field, name == "notValues", &m);
    } else {
      st = absl::InvalidArgumentError(fmt::format("{}: unknown field", field));
    }
    if (!st.ok()) Error(std::string(st.message()));
  }
  if (errors_.size() != errors && IsEmptyMatch(m)) return std::nullopt;
  return Finish(std::move(m), false, path);
}

template <typename Fn>
std::optional<mesh::Clause> RuleBuilder::Alternatives(const YAML::Node& list,
                                                       const std::string& path,
                                                       const char* inner, Fn element) {
  if (!list.IsSequence()) {
    Error(fmt::format("{}: expected a list", path));
    return std::nullopt;
  }
  mesh::Clause clause;
  bool always = list.size() == 0;  // `from: []` constrains nothing
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string item = fmt::format("{}[{}]", path, i);
    const YAML::Node n = list[i];
    if (!n.IsMap()) {
      Error(item + ": expected a map");
      always = true;
      continue;
    }
    for (const auto& kv : n) {
      if (kv.first.Scalar() != inner) {
        Error(fmt::format("{}.{}: unknown field", item, kv.first.Scalar()));
      }
    }
    std::optional<mesh::Match> m = (this->*element)(Child(n, inner), item + "." + inner);
    if (!m) {
      always = true;  // a malformed alternative: the clause is true (fail closed)
    } else {
      clause.matches.push_back(std::move(*m));
    }
  }
  if (always) return std::nullopt;
  return clause;
}

std::string Describe(const RuleBuilder& b, size_t index, bool deny) {
  std::string what;
  if (!b.l7().empty()) {
    what = fmt::format("uses L7 fields {}; the agent enforces L4 only (L7 rules need a "
                       "waypoint: attach the policy to it with targetRefs)",
                       JoinNames(b.l7()));
  }
  for (const std::string& e : b.errors()) {
    if (!what.empty()) what += "; ";
    what += e;
  }
  if (deny) {
    return fmt::format(
        "rule {} of DENY policy partially applied: {}; L7 fields are left out (an element with "
        "only L7 fields never matches, as in ztunnel), malformed parts match anything",
        index, what);
  }
  return fmt::format("rule {} of ALLOW policy dropped: {} (fail closed)", index, what);
}

}  // namespace

RuleResult TranslateRule(const YAML::Node& rule, size_t index, bool deny,
                         std::string_view policy_ns) {
  RuleBuilder b(deny, policy_ns);
  const std::string path = fmt::format("rules[{}]", index);
  mesh::Rule out;
  if (rule.IsMap()) {
    for (const auto& kv : rule) {
      const std::string name = kv.first.Scalar();
      if (name != "to" && name != "from" && name != "when") {
        b.Error(fmt::format("{}.{}: unknown field", path, name));
      }
    }
    // Clause order of §7.4: to[], from[], then one per when[].
    if (const YAML::Node to = Child(rule, "to"); to.IsDefined() && !to.IsNull()) {
      auto c = b.Alternatives(to, path + ".to", "operation", &RuleBuilder::Operation);
      if (c) out.clauses.push_back(std::move(*c));
    }
    if (const YAML::Node from = Child(rule, "from"); from.IsDefined() && !from.IsNull()) {
      auto c = b.Alternatives(from, path + ".from", "source", &RuleBuilder::Source);
      if (c) out.clauses.push_back(std::move(*c));
    }
    if (const YAML::Node when = Child(rule, "when"); when.IsDefined() && !when.IsNull()) {
      if (!when.IsSequence()) {
        b.Error(path + ".when: expected a list");
      } else {
        for (size_t i = 0; i < when.size(); ++i) {
          auto m = b.Condition(when[i], fmt::format("{}.when[{}]", path, i));
          if (m) out.clauses.push_back(mesh::Clause{{std::move(*m)}});
        }
      }
    }
  } else if (rule.IsNull()) {
    b.Error(path + ": empty entry (null); write {} for a rule that matches everything");
  } else {
    b.Error(path + ": expected a map");
  }
  RuleResult r;
  const bool problems = !b.l7().empty() || !b.errors().empty();
  if (problems) r.finding = Describe(b, index, deny);
  if (!problems || deny) r.rule = std::move(out);
  return r;
}

}  // namespace ambit::authz::internal
