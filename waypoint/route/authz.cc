#include "waypoint/route/authz.h"

#include "common/base/ascii.h"

namespace ambit::waypoint::route {

namespace {

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         base::EqualsIgnoreCase(s.substr(s.size() - suffix.size()), suffix);
}

bool AnyString(const std::vector<AuthzString>& values, std::string_view s) {
  for (const AuthzString& v : values) {
    if (v.Matches(s)) return true;
  }
  return false;
}

bool AnyCidr(const std::vector<net::Cidr>& cidrs, const net::IpAddress& ip) {
  for (const net::Cidr& c : cidrs) {
    if (c.Contains(ip)) return true;
  }
  return false;
}

// Istio matches a header value list as Envoy joins it (", "-less commas):
// the whole joined value, or any one comma-separated element of it.
bool HeaderMatches(const AuthzTest& t, const RequestView::Headers& headers, bool* present) {
  // One small vector per header test; header tests are rare (when[] keys).
  thread_local std::vector<std::string_view> values;
  values.clear();
  headers.Values(t.header, &values);
  *present = !values.empty();
  if (values.empty()) return false;
  for (const AuthzString& pattern : t.strings) {
    if (pattern.kind == AuthzString::Kind::kPresence) return true;  // Envoy present_match
    for (std::string_view v : values) {
      if (pattern.Matches(v)) return true;
      if (v.find(',') == std::string_view::npos) continue;
      size_t start = 0;
      while (start <= v.size()) {
        size_t comma = v.find(',', start);
        if (comma == std::string_view::npos) comma = v.size();
        if (pattern.Matches(v.substr(start, comma - start))) return true;
        start = comma + 1;
      }
    }
  }
  return false;
}

// Whether the attribute's value is in the test's list; *present false
// when the request has no such attribute at all.
bool Hit(const AuthzTest& t, const AuthzRequest& r, bool* present) {
  *present = true;
  switch (t.attr) {
    case AuthzAttr::kPrincipal:
      *present = r.has_identity;
      return r.has_identity && AnyString(t.strings, r.principal);
    case AuthzAttr::kNamespace:
      *present = r.has_identity;
      return r.has_identity && AnyString(t.strings, r.ns);
    case AuthzAttr::kSourceIp:
      return AnyCidr(t.cidrs, r.source_ip);
    case AuthzAttr::kRemoteIp:
      return AnyCidr(t.cidrs, r.remote_ip);
    case AuthzAttr::kDestinationIp:
      return AnyCidr(t.cidrs, r.destination_ip);
    case AuthzAttr::kDestinationPort:
      for (uint16_t p : t.ports) {
        if (p == r.destination_port) return true;
      }
      return false;
    case AuthzAttr::kHost:
      return AnyString(t.strings, r.authority);
    case AuthzAttr::kMethod:
      return AnyString(t.strings, r.method);
    case AuthzAttr::kPath:
      return AnyString(t.strings, r.path);
    case AuthzAttr::kHeader:
      if (r.headers == nullptr) {
        *present = false;
        return false;
      }
      return HeaderMatches(t, *r.headers, present);
    case AuthzAttr::kRequestPrincipal:
    case AuthzAttr::kSni:
      *present = false;
      return false;
  }
  return false;
}

bool TestMatches(const AuthzTest& t, const AuthzRequest& r) {
  if (r.tcp && IsHttpAttr(t.attr)) return true;  // only reached for DENY-like rules
  bool present = false;
  const bool hit = Hit(t, r, &present);
  return t.negative ? !hit : hit;
}

bool MatchMatches(const AuthzMatch& m, const AuthzRequest& r) {
  for (const AuthzTest& t : m.tests) {
    if (!TestMatches(t, r)) return false;
  }
  return true;
}

bool ClauseMatches(const AuthzClause& c, const AuthzRequest& r) {
  if (c.matches.empty()) return true;
  for (const AuthzMatch& m : c.matches) {
    if (MatchMatches(m, r)) return true;
  }
  return false;
}

bool RuleMatches(const AuthzRule& rule, const AuthzRequest& r) {
  for (const AuthzClause& c : rule.clauses) {
    if (!ClauseMatches(c, r)) return false;
  }
  return true;
}

const AuthzPolicy* FirstMatch(const AuthzConfig& cfg, const std::vector<uint32_t>& list,
                              const AuthzRequest& r) {
  for (uint32_t i : list) {
    if (AuthzMatches(cfg.policies[i], r)) return &cfg.policies[i];
  }
  return nullptr;
}

// "." or ".." (0, 1 or 2), with %2e standing for a dot.
int DotSegment(std::string_view seg) {
  int dots = 0;
  while (!seg.empty()) {
    if (seg.front() == '.') {
      seg.remove_prefix(1);
    } else if (seg.size() >= 3 && seg[0] == '%' && seg[1] == '2' &&
               (seg[2] == 'e' || seg[2] == 'E')) {
      seg.remove_prefix(3);
    } else {
      return 0;
    }
    if (++dots > 2) return 0;
  }
  return dots;
}

}  // namespace

std::string_view AuthzPath(std::string_view path, std::string* scratch) {
  path = path.substr(0, path.find('?'));
  // A dot segment starts right after a '/' (or at the start) with '.' or "%2".
  if (!path.starts_with('.') && !path.starts_with("%2") &&
      path.find("/.") == std::string_view::npos && path.find("/%2") == std::string_view::npos) {
    return path;
  }
  // Split into segments after the leading '/', drop "." and pop on "..".
  std::vector<std::string_view> segs;
  bool changed = false;
  std::string_view rest = path;
  const bool absolute = rest.starts_with('/');
  if (absolute) rest.remove_prefix(1);
  bool trailing = false;  // a dot segment at the end keeps a trailing '/'
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    const int dots = DotSegment(seg);
    const bool last = slash == std::string_view::npos;
    if (dots == 1) {
      changed = true;
      trailing = last;
    } else if (dots == 2) {
      changed = true;
      if (!segs.empty()) segs.pop_back();
      trailing = last;
    } else {
      segs.push_back(seg);
      trailing = false;
    }
    if (last) break;
    rest.remove_prefix(slash + 1);
  }
  if (!changed) return path;
  scratch->clear();
  for (size_t i = 0; i < segs.size(); ++i) {
    if (absolute || i > 0) scratch->push_back('/');
    scratch->append(segs[i]);
  }
  if (trailing || scratch->empty()) scratch->push_back('/');
  return *scratch;
}

bool AuthzString::Matches(std::string_view s) const {
  switch (kind) {
    case Kind::kExact:
      return ignore_case ? base::EqualsIgnoreCase(s, value) : s == value;
    case Kind::kPrefix:
      return ignore_case ? base::StartsWithIgnoreCase(s, value) : s.starts_with(value);
    case Kind::kSuffix:
      return ignore_case ? EndsWithIgnoreCase(s, value) : s.ends_with(value);
    case Kind::kPresence:
      return !s.empty();
    case Kind::kAny:
      return true;
    case Kind::kNever:
      return false;
  }
  return false;
}

std::string_view AuthzActionName(AuthzAction a) {
  switch (a) {
    case AuthzAction::kAllow:
      return "ALLOW";
    case AuthzAction::kDeny:
      return "DENY";
    case AuthzAction::kAudit:
      return "AUDIT";
    case AuthzAction::kCustom:
      return "CUSTOM";
  }
  return "?";
}

const AuthzSet& AuthzConfig::For(const mesh::Service* service) const {
  if (service == nullptr || by_service.empty()) return waypoint_wide;
  auto it = by_service.find(ServiceKeyLess::View(service->ns, service->hostname));
  return it == by_service.end() ? waypoint_wide : it->second;
}

bool IsHttpAttr(AuthzAttr a) {
  switch (a) {
    case AuthzAttr::kHost:
    case AuthzAttr::kMethod:
    case AuthzAttr::kPath:
    case AuthzAttr::kHeader:
    case AuthzAttr::kRequestPrincipal:
      return true;
    default:
      return false;
  }
}

bool AuthzMatches(const AuthzPolicy& p, const AuthzRequest& r) {
  const bool deny_like = p.action == AuthzAction::kDeny || p.action == AuthzAction::kCustom;
  for (const AuthzRule& rule : p.rules) {
    if (r.tcp && rule.http && !deny_like) continue;
    if (RuleMatches(rule, r)) return true;
  }
  return false;
}

AuthzDecision EvaluateAuthz(const AuthzConfig& cfg, const AuthzSet& set, const AuthzRequest& r) {
  AuthzDecision d;
  if (set.empty()) return d;
  d.evaluated = true;
  if (!set.dry_deny.empty() || !set.dry_allow.empty()) {
    d.shadow = true;
    if (const AuthzPolicy* p = FirstMatch(cfg, set.dry_deny, r)) {
      d.shadow_allow = false;
      d.shadow_policy = p;
    } else if (!set.dry_allow.empty()) {
      d.shadow_policy = FirstMatch(cfg, set.dry_allow, r);
      d.shadow_allow = d.shadow_policy != nullptr;
    }
  }
  d.audit = FirstMatch(cfg, set.audit, r);
  if (const AuthzPolicy* p = FirstMatch(cfg, set.deny, r)) {
    d.allow = false;
    d.policy = p;
    return d;
  }
  if (!set.allow.empty()) {
    d.policy = FirstMatch(cfg, set.allow, r);
    d.allow = d.policy != nullptr;
  }
  return d;
}

}  // namespace ambit::waypoint::route
