// The route step of the waypoint's pipeline (WAYPOINT.md §3): a request to
// a service port with a route table is matched against it; the matched
// route either answers locally (redirect, direct response, no route,
// unusable destination) or names the weighted cluster the request goes to,
// with its header edits and rewrites. A port without a table keeps Istio's
// default route (the service's own endpoints); pod-addressed traffic never
// gets a service route. Worker thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "waypoint/proxy/downstream.h"
#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/retry.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint {

struct ClusterRuntime;  // circuit_breaker.h

struct RouteResult {
  enum class Kind : uint8_t { kDefault, kForward, kLocal };
  Kind kind = Kind::kDefault;
  const route::Route* route = nullptr;           // kForward, kLocal (when one matched)
  const route::RouteMatch* match = nullptr;      // the block that matched
  const route::WeightedCluster* cluster = nullptr;  // kForward
  const mesh::Service* service = nullptr;        // kForward: the cluster's service
  const route::ClusterInfo* cluster_info = nullptr;  // kForward
  LocalReply reply;                              // kLocal
  // kForward / kDefault: the cluster's DestinationRule policy (null: the
  // defaults), the request's consistent-hash key, and a hash cookie to
  // issue on the response (RouteHeaders fills them).
  const route::TrafficPolicy* policy = nullptr;
  std::optional<uint64_t> lb_hash;
  route::HeaderOps lb_response_headers;
};

// Matches `view` (filled by the caller from its request; the client's
// labels and namespace are added here) for the connection's target.
// `random` feeds the weighted pick.
RouteResult RouteRequest(const Downstream& d, route::RequestView view, uint64_t random);

// RouteRequest for a request seen through either codec's header list.
template <typename HeaderList>
RouteResult RouteHeaders(const Downstream& d, std::string_view method, std::string_view path,
                         std::string_view authority, const HeaderList& headers,
                         uint64_t random);

// The matched route's fault injection for this request: a delay to wait
// first (zero: none) and/or an abort answer (flags DI / FI, counted).
struct FaultDecision {
  base::Duration delay{0};
  std::optional<LocalReply> abort;
};
FaultDecision DecideFault(const Downstream& d, const RouteResult& r);

// The endpoint for the next try of a request: the routed cluster's
// (kForward), else the connection's default (Downstream::PickEndpoint).
// Endpoints the cluster's outlier detection ejected are skipped.
// `exclude`: locality priorities a retry skips (RetryState::ExcludedPriorities).
EndpointPtr PickRoutedEndpoint(const Downstream& d, const RouteResult& r,
                               const std::string& avoid = {},
                               const std::vector<uint32_t>* exclude = nullptr);

// The circuit-breaker and outlier state of the cluster a forwarded (or
// default-routed) request goes to; null when no DestinationRule policy
// applies (or the request is pod-addressed).
const ClusterRuntime* ClusterRuntimeFor(const Downstream& d, const RouteResult& r);

// The retry state of a request that started at `start`: its route's retry
// policy (Istio's default without a route) and the route's overall timeout.
RetryState RetryStateFor(const RouteResult& r, base::MonoTime start);

// Notes the route outcome in `info` (route name, cluster, service) and
// counts local outcomes on the worker.
void NoteRoute(const Downstream& d, const RouteResult& r, RequestInfo& info);

// Header edits on either codec's header list (names lower-case on the wire
// for HTTP/2; compared case-insensitively for HTTP/1.1).
template <typename HeaderList>
void ApplyHeaderOps(const route::HeaderOps& ops, HeaderList& headers);

// The request-target and authority after the route's rewrites, for a
// forwarded request (unchanged when the route has none).
struct RewrittenTarget {
  std::string path;       // with query
  std::string authority;  // empty: keep the request's
};
RewrittenTarget RewriteRequest(const RouteResult& r, std::string_view path);

// RequestView::Headers over either codec's header list.
template <typename HeaderList>
class HeaderView final : public route::RequestView::Headers {
 public:
  explicit HeaderView(const HeaderList& h) : h_(h) {}
  void Values(std::string_view lower_name, std::vector<std::string_view>* out) const override;

 private:
  const HeaderList& h_;
};

}  // namespace ambit::waypoint
