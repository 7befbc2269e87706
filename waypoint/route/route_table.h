// The waypoint's compiled routing model (WAYPOINT.md §3–5): what a request to
// a service port is matched against, and what the matched route does.
//
// Built on the control thread from VirtualService / DestinationRule
// (compile_istio.cc) and HTTPRoute / GRPCRoute (compile_gateway.cc) once per
// config change, then published to workers inside WaypointState as one
// immutable RouteConfig. Workers only read it (Match, Pick); nothing in here
// is mutated after Compile returns.
//
// Vocabulary is Envoy's: a *route table* per service port (Envoy's virtual
// host of the waypoint's listener), ordered *routes*, each with matches and
// an action (forward to weighted *clusters*, redirect, direct response),
// clusters named like Envoy's waypoint clusters.
#pragma once

#include <re2/re2.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/route/ratelimit_config.h"
#include "waypoint/route/retry_policy.h"
#include "waypoint/route/traffic_policy.h"

namespace ambit::waypoint::route {

using LabelMap = std::map<std::string, std::string>;

// One string condition (VirtualService StringMatch, Gateway API value match).
struct StringMatcher {
  enum class Kind : uint8_t { kExact, kPrefix, kSuffix, kRegex, kPresent };
  Kind kind = Kind::kExact;
  std::string value;                  // lower-cased when ignore_case
  std::shared_ptr<const RE2> regex;   // kRegex: full match (RE2::FullMatch)
  bool ignore_case = false;           // exact/prefix only (ignoreUriCase)
  bool Matches(std::string_view s) const;
};

// The request path condition. kPrefix is a plain string prefix
// (VirtualService: `/api` matches `/apiv2`); kPathPrefix matches whole
// segments (Gateway API: `/v2` matches `/v2`, `/v2/`, `/v2/x`, not
// `/v2example`; `value` has no trailing '/', except the root "/").
// Matched against the path without its query.
struct PathMatcher {
  enum class Kind : uint8_t { kAny, kExact, kPrefix, kPathPrefix, kRegex };
  Kind kind = Kind::kAny;
  std::string value;
  std::shared_ptr<const RE2> regex;
  bool ignore_case = false;
  bool Matches(std::string_view path) const;
};

struct HeaderMatcher {
  std::string name;       // lower-case (matched case-insensitively)
  StringMatcher value;    // kPresent: the header exists (any value)
  bool invert = false;    // VirtualService withoutHeaders
};

struct QueryMatcher {
  std::string name;       // case-sensitive
  StringMatcher value;    // kPresent: the parameter exists
};

// One match block: every condition must hold (AND). A route's blocks are ORed.
struct RouteMatch {
  PathMatcher path;
  std::optional<StringMatcher> method;
  std::optional<StringMatcher> authority;  // :authority / Host, port included as sent
  std::vector<HeaderMatcher> headers;
  std::vector<QueryMatcher> query;
  std::optional<uint16_t> port;            // the service port the request came to
  LabelMap source_labels;                  // the client workload carries all of them
  std::optional<std::string> source_namespace;
};

// Header edits (names lower-case; `set` replaces every value of a name,
// `add` appends one more, `remove` deletes every value).
struct HeaderOps {
  std::vector<std::pair<std::string, std::string>> set, add;
  std::vector<std::string> remove;
  bool empty() const { return set.empty() && add.empty() && remove.empty(); }
};

// How the path is rewritten on the way upstream (or into a redirect's Location).
struct PathRewrite {
  enum class Kind : uint8_t {
    kNone,
    kPrefix,              // VirtualService rewrite.uri: the matched prefix → value, as a
                          // string (prefix `/foo` + `/` on `/foo/baz` → `//baz`); with an
                          // exact or regex match the whole path becomes `value`
    kFull,                // Gateway ReplaceFullPath / VirtualService redirect.uri
    kReplacePrefixMatch,  // Gateway ReplacePrefixMatch (segment-aware, never `//`)
    kRegex,               // VirtualService uriRegexRewrite: RE2 GlobalReplace
  };
  Kind kind = Kind::kNone;
  std::string value;                  // replacement (kRegex: RE2 rewrite string, \1)
  std::shared_ptr<const RE2> regex;   // kRegex
};

// A cluster: a service port, optionally narrowed to a DestinationRule subset.
// Name as Envoy's waypoint prints it: inbound-vip|PORT|http|HOST, or
// inbound-vip|PORT|http/SUBSET|HOST for a subset.
struct ClusterRef {
  std::string name;        // the cluster name above; the key of RouteConfig::clusters
  std::string service;     // "ns/hostname" (mesh::Service::Key())
  uint16_t port = 0;       // service port
  std::string subset;      // "" = the whole service
};

struct WeightedCluster {
  ClusterRef cluster;
  uint32_t weight = 1;     // relative; 0 never receives a request
  // Per-destination edits (VirtualService destination `headers`, Gateway
  // backendRef `filters`), applied after the route's own.
  HeaderOps request_headers, response_headers;
  // Set when the destination cannot be used (unknown host, unknown subset,
  // cross-namespace backendRef without a ReferenceGrant): a request that picks
  // it is answered `unresolved_status` (VirtualService 503 NC, Gateway 500).
  bool unresolved = false;
};

struct Mirror {
  ClusterRef cluster;
  uint32_t per_million = 1'000'000;  // share of requests copied
  bool unresolved = false;           // skipped (and counted) when set
};

struct Redirect {
  std::optional<std::string> scheme;     // "http" | "https"
  std::optional<std::string> authority;  // host (no port)
  std::optional<uint16_t> port;
  // Gateway API's port rules (rewrite.h RedirectLocation); else Envoy's.
  bool gateway_port_rules = false;
  PathRewrite path;                      // kNone keeps the request path
  int status = 301;                      // VirtualService default 301, Gateway 302
};

struct DirectResponse {
  int status = 200;
  std::string body;
};

// VirtualService `fault`: applied after the route matched, before its
// action (Envoy's fault filter sits before the router). Shares are per
// million; a missing percentage is 0 (istiod leaves Envoy's default).
struct Fault {
  std::chrono::nanoseconds delay{0};
  uint32_t delay_per_million = 0;
  int abort_status = 0;          // HTTP status, 0 = no abort
  int abort_grpc = -1;           // gRPC status code (grpcStatus), -1 = from abort_status
  uint32_t abort_per_million = 0;
};

struct Route {
  // For logs, metrics and /config_dump: "<kind> <ns>/<name>" plus the rule's
  // own name or index, e.g. "VirtualService demo/reviews-routing http[0]".
  std::string name;
  std::string source;      // "file:line" of the rule
  std::vector<RouteMatch> matches;  // OR; empty = every request

  enum class Action : uint8_t { kForward, kRedirect, kDirectResponse };
  Action action = Action::kForward;
  std::vector<WeightedCluster> clusters;  // kForward; weights relative
  uint32_t total_weight = 0;              // sum of `clusters` weights
  int unresolved_status = 503;            // see WeightedCluster::unresolved
  std::optional<Redirect> redirect;
  std::optional<DirectResponse> direct_response;

  HeaderOps request_headers, response_headers;  // the route's own
  PathRewrite rewrite;                          // kForward
  std::optional<std::string> authority_rewrite;
  std::vector<Mirror> mirrors;
  // Whole-request timeout (VirtualService `timeout`, HTTPRoute
  // `timeouts.request` / `backendRequest`, the shorter of the two); zero =
  // none, Istio's default. Counted from the request head; past it the
  // upstream stream is reset and the client gets 504 (flag UT), or a cut
  // response once one started.
  std::chrono::nanoseconds timeout{0};
  // Unset: Istio's default policy (IstioDefaultRetry); num_retries 0: none.
  std::optional<RetryPolicy> retry;
  const RetryPolicy& Retry() const { return retry ? *retry : IstioDefaultRetry(); }
  std::optional<Fault> fault;

  // Gateway API precedence inputs (compile_gateway.cc sorts by them; kept
  // for /config_dump).
  bool grpc = false;  // from a GRPCRoute: no match answers gRPC UNIMPLEMENTED
};

// All routes of one service port, in match order (first match wins).
struct RouteTable {
  std::string service;  // "ns/hostname"
  uint16_t port = 0;
  enum class Kind : uint8_t { kVirtualService, kHttpRoute, kGrpcRoute };
  Kind kind = Kind::kVirtualService;
  std::vector<Route> routes;
  std::vector<std::string> bound;  // "VirtualService ns/name" etc. that contributed
};

// A DestinationRule subset (labels an endpoint must carry).
struct Subset {
  std::string name;
  LabelMap labels;
};

struct ClusterInfo {
  ClusterRef ref;
  LabelMap subset_labels;  // empty for the whole service
  std::string source;      // "DestinationRule ns/name" when from a subset
};

// What a request brings to matching.
struct RequestView {
  std::string_view method;
  std::string_view path;       // with query, as sent (":path" / request-target)
  std::string_view authority;  // ":authority" / Host
  uint16_t port = 0;           // service port
  // Header lookup: every value of a lower-case name (empty = absent).
  // Implemented by the caller over its own header representation.
  struct Headers {
    virtual ~Headers() = default;
    virtual void Values(std::string_view lower_name, std::vector<std::string_view>* out) const = 0;
  };
  const Headers* headers = nullptr;
  const LabelMap* source_labels = nullptr;  // null: unknown client
  std::string_view source_namespace;
};

bool Matches(const RouteMatch& m, const RequestView& r);
// The first route of `table` with a matching block, or null (no route: 404 NR,
// gRPC UNIMPLEMENTED).
// *matched (optional) is the block that matched (null for a route without
// blocks).
const Route* MatchRoute(const RouteTable& table, const RequestView& r,
                        const RouteMatch** matched = nullptr);
// A cluster of `route` by weight; `random` is uniform in [0, total_weight).
// Null only when every weight is zero.
const WeightedCluster* PickCluster(const Route& route, uint64_t random);

// The whole compiled config: route tables by "ns/hostname|port", clusters by
// name. A service port without a table gets Istio's default route (the
// service's own endpoints).
struct RouteConfig {
  std::map<std::string, RouteTable> tables;
  std::map<std::string, ClusterInfo> clusters;
  std::map<std::string, std::vector<Subset>> subsets;  // by service "ns/hostname"
  // DestinationRule traffic policies after Istio's merge (top level, then
  // the port's portLevelSettings, then the subset's own), by cluster name;
  // a cluster without an entry uses the defaults.
  std::map<std::string, TrafficPolicy, std::less<>> policies;
  const TrafficPolicy* PolicyFor(std::string_view cluster_name) const;
  // Rate limit policies bound to this waypoint, in config order
  // (ratelimit_config.h); each request is checked against every one.
  std::vector<RateLimitPolicy> rate_limits;
  uint64_t generation = 0;

  static std::string TableKey(std::string_view service, uint16_t port);
  const RouteTable* Find(std::string_view service, uint16_t port) const;
};

// Things the compiler could not apply, or applied partly; one per problem.
struct Finding {
  std::string location;  // "file:line" of the field (or of the resource)
  std::string kind;      // "VirtualService", "HTTPRoute", ...
  std::string resource;  // "ns/name"
  std::string message;   // "field.path: problem; what was done instead"
  // A value Istio's validation would refuse (an invalid duration, a
  // percentage over 100, an unknown retryOn token, a non-prime Maglev size):
  // the whole config change is rejected and the last good config stays.
  // Otherwise the finding is a warning and the rest applies.
  bool invalid = false;
  std::string ToString() const;  // "file:line: Kind ns/name: message"
};

}  // namespace ambit::waypoint::route
