// L7 authorization at the waypoint (Istio AuthorizationPolicy bound by
// `targetRefs`, issue 18): the compiled, immutable policy index and its
// per-request evaluation (Envoy's RBAC filter as istiod programs it for a
// waypoint).
//
// Built once per config change on the control thread (compile_authz.cc),
// published to the workers with the rest of WaypointState; EvaluateAuthz()
// only reads it (no locks; no allocation beyond one per-thread header list
// that is reused, and AuthzPath() allocates only for paths with dot segments).
//
// Model: policy = OR of rules (zero rules never match); rule = AND of
// clauses (zero clauses always match); clause = OR of matches (from[] /
// to[] alternatives; one clause per when[]); match = AND of tests; a test
// is one attribute with a value list, positive (any value matches) or
// negative (no value may match). An absent attribute (no peer identity, no
// JWT, a missing header, no SNI) fails a positive test and passes a
// negative one, like Envoy's NOT over a failed matcher.
//
// Order (Istio's filter chain: CUSTOM, DENY, ALLOW; AUDIT is a LOG-only RBAC
// filter; dry-run policies go to the shadow engines):
//   1. an enforced DENY (or CUSTOM, fail closed) that matches → deny;
//   2. enforced ALLOW policies exist and none matches → deny;
//   3. otherwise allow.
// AUDIT and dry-run policies never change the decision; their matches are
// reported in the Decision for the log line and counters.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/mesh/types.h"
#include "common/net/address.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint::route {

// One value of an Istio string list: "*" presence, "x*" prefix, "*x" suffix,
// else exact. kAny / kNever stand in for values we cannot evaluate (path
// templates), chosen so that the policy only gets stricter.
struct AuthzString {
  enum class Kind : uint8_t { kExact, kPrefix, kSuffix, kPresence, kAny, kNever };
  Kind kind = Kind::kExact;
  std::string value;
  bool ignore_case = false;  // hosts
  bool Matches(std::string_view s) const;
};

enum class AuthzAttr : uint8_t {
  kPrincipal,         // peer SPIFFE id without "spiffe://"; absent without mTLS
  kNamespace,         // namespace of the peer identity
  kSourceIp,          // ipBlocks, source.ip: the downstream peer address
  kRemoteIp,          // remoteIpBlocks, source.remote_ip-like (no trusted hops: the peer)
  kRequestPrincipal,  // requestPrincipals, request.auth.*: no JWT support yet → absent
  kHost,              // hosts: :authority / Host as sent, case-insensitive
  kMethod,            // methods
  kPath,              // paths: the path without its query
  kDestinationPort,   // ports, destination.port: the service (or pod) port addressed
  kDestinationIp,     // destination.ip: the VIP (or pod IP) addressed
  kHeader,            // request.headers[name]
  kSni,               // connection.sni: the HBONE inner stream has none → absent
};

struct AuthzTest {
  AuthzAttr attr = AuthzAttr::kPrincipal;
  bool negative = false;
  std::string header;                 // kHeader: lower-case name
  std::vector<AuthzString> strings;   // string attributes
  std::vector<net::Cidr> cidrs;       // kSourceIp, kRemoteIp, kDestinationIp
  std::vector<uint16_t> ports;        // kDestinationPort
};

struct AuthzMatch {
  std::vector<AuthzTest> tests;  // AND
};
struct AuthzClause {
  std::vector<AuthzMatch> matches;  // OR
};
struct AuthzRule {
  std::vector<AuthzClause> clauses;  // AND
  // Some test reads an HTTP attribute (hosts, methods, paths, headers,
  // request principals). On a TCP connection istiod drops such a rule from
  // ALLOW/AUDIT policies and drops just those fields from DENY ones (the
  // stricter reading both times).
  bool http = false;
};
bool IsHttpAttr(AuthzAttr a);

enum class AuthzAction : uint8_t { kAllow, kDeny, kAudit, kCustom };
std::string_view AuthzActionName(AuthzAction a);

struct AuthzPolicy {
  std::string key;     // "ns/name"
  std::string source;  // "file:line"
  AuthzAction action = AuthzAction::kAllow;
  bool dry_run = false;                 // istio.io/dry-run: "true"
  std::vector<AuthzRule> rules;         // OR; none = matches nothing
  std::vector<std::string> bound_to;    // "Gateway ns/name", "Service ns/name", ...
};

// The policies that apply to one destination, by category, as indexes into
// AuthzConfig::policies (each list in config order).
struct AuthzSet {
  std::vector<uint32_t> deny, allow, audit, dry_deny, dry_allow;
  bool empty() const {
    return deny.empty() && allow.empty() && audit.empty() && dry_deny.empty() &&
           dry_allow.empty();
  }
};

// What a request brings to authorization.
struct AuthzRequest {
  bool has_identity = false;
  std::string_view principal;  // "td/ns/x/sa/y"
  std::string_view ns;         // from the principal
  net::IpAddress source_ip, remote_ip, destination_ip;
  uint16_t destination_port = 0;
  std::string_view method, path, authority;  // path without the query
  const RequestView::Headers* headers = nullptr;
  bool tcp = false;  // a TCP connection (no HTTP attributes; see AuthzRule::http)
};

struct AuthzDecision {
  bool allow = true;
  // Deciding policy: the DENY that matched, or the ALLOW that allowed; null
  // when no ALLOW matched (deny) or nothing applies (allow).
  const AuthzPolicy* policy = nullptr;
  bool evaluated = false;                 // some policy applied to the request
  const AuthzPolicy* audit = nullptr;     // first AUDIT policy that matched
  // Shadow (dry-run) result when dry-run policies apply: denied by the first
  // dry-run DENY that matches, else allowed by the first dry-run ALLOW that
  // matches, else denied (dry-run ALLOWs exist, none matched).
  bool shadow = false;
  bool shadow_allow = true;
  const AuthzPolicy* shadow_policy = nullptr;
};

// Orders services by (namespace, hostname) without building a key string.
struct ServiceKeyLess {
  using is_transparent = void;
  using Key = std::pair<std::string, std::string>;
  using View = std::pair<std::string_view, std::string_view>;
  bool operator()(const Key& a, const Key& b) const { return a < b; }
  bool operator()(const Key& a, const View& b) const {
    return View(a.first, a.second) < b;
  }
  bool operator()(const View& a, const Key& b) const {
    return a < View(b.first, b.second);
  }
};

struct AuthzConfig {
  std::vector<AuthzPolicy> policies;
  std::string waypoint;    // "ns/name" of the Gateway this waypoint is
  AuthzSet waypoint_wide;  // Gateway / GatewayClass refs: every request
  // Service / ServiceEntry refs, merged with waypoint_wide, by (ns, hostname).
  std::map<ServiceKeyLess::Key, AuthzSet, ServiceKeyLess> by_service;

  // The set for a request to `service` (null: pod-addressed).
  const AuthzSet& For(const mesh::Service* service) const;
  bool empty() const { return policies.empty(); }
};

// The path policies see: without the query, dot segments ("." / ".." and
// their %2e forms) resolved as RFC 3986 §5.2.4 does, like Envoy's path
// normalization before its RBAC filter, so `/api/v1/../admin` is judged as
// `/admin`. Returns a view of `path` when nothing changes, else of *scratch.
std::string_view AuthzPath(std::string_view path, std::string* scratch);

bool AuthzMatches(const AuthzPolicy& p, const AuthzRequest& r);
AuthzDecision EvaluateAuthz(const AuthzConfig& cfg, const AuthzSet& set, const AuthzRequest& r);

}  // namespace ambit::waypoint::route
