// Internals of the Gateway API compiler (compile_gateway*.cc): HTTPRoute /
// GRPCRoute rules → routes with their precedence inputs, ReferenceGrants.
// Control thread only. The entry point is internal::CompileGatewayRoutes
// (compile.h); this header only splits the work between files.
//
// Semantics from kubernetes-sigs/gateway-api apis/v1/{httproute,grpcroute,
// shared}_types.go. Where the spec leaves a choice to the implementation
// (RegularExpression precedence, unsupported filters), Istio's behaviour is
// followed and the choice is written next to the code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "waypoint/route/compile_util.h"

namespace ambit::waypoint::route::internal {

inline constexpr std::string_view kGatewayGroup = "gateway.networking.k8s.io";

// Which cross-namespace backend references the ReferenceGrants allow.
class ReferenceGrants {
 public:
  // One ReferenceGrant resource (its apiVersion already checked).
  void Add(const Doc& doc, Sink& sink);
  // May a `from_kind` (HTTPRoute / GRPCRoute) in `from_ns` refer to Service
  // `name` in `to_ns`? A grant lives in the referent's namespace.
  bool AllowsService(std::string_view from_kind, std::string_view from_ns, std::string_view to_ns,
                     std::string_view name) const;

 private:
  struct From {
    std::string group, kind, ns;
  };
  struct To {
    std::string group, kind, name;  // name "" = every object of the kind
  };
  struct Grant {
    std::string ns;
    std::vector<From> from;
    std::vector<To> to;
  };
  std::vector<Grant> grants_;
};

// Precedence inputs of one compiled (rule, match) pair; compared by
// compile_gateway.cc across every route bound to one table.
struct RouteRank {
  // HTTPRoute: path kind (3 Exact, 2 PathPrefix, 1 RegularExpression — the
  // spec leaves regex to the implementation; Istio ranks it below every
  // prefix), value length, method present, header and query counts.
  int path_kind = 0;
  size_t path_len = 0;
  bool method = false;
  size_t headers = 0, query = 0;
  // GRPCRoute: characters of the matching service, then of the method
  // (pattern characters for RegularExpression), then header count.
  size_t grpc_service = 0, grpc_method = 0;
  size_t rule = 0, match = 0;  // order inside the resource
};

struct RankedRoute {
  Route route;
  RouteRank rank;
};

struct GatewayContext {
  const mesh::Snapshot& snap;
  const ReferenceGrants& grants;
  RouteConfig* out;
  Sink& sink;
};

// Every rule of an HTTPRoute (grpc=false) or GRPCRoute, one RankedRoute per
// (rule, match) pair, in rule then match order. Invalid rules are reported
// and left out (the spec's "Dropped Rule" behaviour).
std::vector<RankedRoute> CompileGatewayRules(const Doc& doc, bool grpc, GatewayContext& ctx);

// --- shared by compile_gateway_*.cc

// The scalar at n, or `def` when absent/null; nullopt (with a finding) when
// present but not a scalar.
std::optional<std::string> OptScalar(const Doc& doc, const YAML::Node& n, std::string_view field,
                                     std::string_view def, Sink& sink);
// parent[key] as a non-empty scalar; nullopt with "field.key: required; rule
// dropped" (or the matching problem) otherwise.
std::optional<std::string> Required(const Doc& doc, const YAML::Node& parent, std::string_view key,
                                    std::string_view field, Sink& sink,
                                    std::string_view what = "rule dropped");
// An integer in min..max; nullopt with "field: 'x' is not a number in
// min..max; <what>" otherwise.
std::optional<uint64_t> Number(const Doc& doc, const YAML::Node& n, std::string_view field,
                               uint64_t min, uint64_t max, std::string_view what, Sink& sink);
// One RouteMatch per `matches` entry with its rank; false when the rule is
// invalid (reported).
struct CompiledMatch {
  RouteMatch match;
  RouteRank rank;
};
bool CompileHttpMatches(const Doc& doc, const YAML::Node& rule, std::string_view field,
                        std::vector<CompiledMatch>* out, Sink& sink);
bool CompileGrpcMatches(const Doc& doc, const YAML::Node& rule, std::string_view field,
                        std::vector<CompiledMatch>* out, Sink& sink);

// A backendRef / mirror backendRef resolved to a cluster. `unresolved` when it
// cannot be used (reported). The port is required for Services.
struct ResolvedBackend {
  ClusterRef cluster;
  bool unresolved = false;
};
// `consequence` ends each finding ("requests to it are answered 500", "the
// mirror is skipped"). Unknown keys are the caller's to report.
ResolvedBackend ResolveBackendRef(const Doc& doc, const YAML::Node& ref, std::string_view field,
                                  std::string_view consequence, GatewayContext& ctx);

// One rule-level backendRefs entry (weight, backend filters); false when the
// rule must be dropped (weight out of range).
bool CompileBackendRef(const Doc& doc, const YAML::Node& ref, std::string_view field,
                       GatewayContext& ctx, WeightedCluster* out);

// The Kubernetes Service `name` in `ns` (a backendRef / parentRef names it
// that way, never by hostname); null when unknown.
const mesh::Service* FindService(const mesh::Snapshot& snap, std::string_view ns,
                                 std::string_view name);

// RequestHeaderModifier / ResponseHeaderModifier body → ops; false when
// invalid (reported).
bool CompileHeaderModifier(const Doc& doc, const YAML::Node& n, std::string_view field,
                           HeaderOps* ops, Sink& sink);

// RFC 3339 timestamp → (seconds since the epoch, nanoseconds); nullopt when
// it does not parse.
std::optional<std::pair<int64_t, int32_t>> ParseRfc3339(std::string_view s);

}  // namespace ambit::waypoint::route::internal
