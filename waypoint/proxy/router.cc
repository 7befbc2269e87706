#include "waypoint/proxy/router.h"

#include <fmt/format.h>

#include "common/base/ascii.h"
#include "common/http1/codec.h"
#include "common/http2/h2_types.h"
#include "waypoint/proxy/lb_request.h"
#include "waypoint/proxy/circuit_breaker.h"
#include "waypoint/proxy/worker.h"
#include "waypoint/route/rewrite.h"

namespace ambit::waypoint {

namespace {

LocalReply NoRoute() {
  // Envoy answers 404 with an empty body; gRPC clients see UNIMPLEMENTED.
  return LocalReply{404, "", "NR", "route_not_found", 12, {}, ""};
}

// gRPC clients see UNAVAILABLE either way (the Gateway API's GRPCRoute rule
// for an invalid backend).
LocalReply Unresolved(int status) {
  if (status == 500) {
    return LocalReply{500, "", "NC", "cluster_not_found", 14, {}, ""};
  }
  return LocalReply{503, "", "NC", "cluster_not_found", 14, {}, ""};
}

// spiffe://<td>/ns/<ns>/sa/<sa> → <ns> ("" otherwise).
std::string_view PrincipalNamespace(std::string_view p) {
  const size_t at = p.find("/ns/");
  if (at == std::string_view::npos) return {};
  std::string_view rest = p.substr(at + 4);
  return rest.substr(0, rest.find('/'));
}

// A route's own response edits on a reply it makes itself (Envoy applies
// response_headers_to_add to direct responses and redirects too).
void AddRouteHeaders(const route::Route& r, LocalReply* reply) {
  for (const auto& [k, v] : r.response_headers.set) reply->headers.emplace_back(k, v);
  for (const auto& [k, v] : r.response_headers.add) reply->headers.emplace_back(k, v);
}

std::string_view Scheme(const route::RequestView& v) {
  std::vector<std::string_view> proto;
  if (v.headers != nullptr) v.headers->Values("x-forwarded-proto", &proto);
  if (!proto.empty() && base::EqualsIgnoreCase(proto.front(), "https")) return "https";
  return "http";
}

}  // namespace

RouteResult RouteRequest(const Downstream& d, route::RequestView view, uint64_t random) {
  RouteResult out;
  const mesh::Service* svc = d.target.service;
  const route::RouteConfig* cfg = d.state->routes.get();
  if (svc == nullptr || cfg == nullptr) return out;
  const route::RouteTable* table = cfg->Find(svc->Key(), d.target.port);
  if (table == nullptr) return out;
  if (d.source != nullptr) {
    view.source_labels = &d.source->labels;
    view.source_namespace = d.source->ns;
  } else {
    view.source_namespace = PrincipalNamespace(d.principal);
  }
  const route::Route* r = route::MatchRoute(*table, view, &out.match);
  if (r == nullptr) {
    out.kind = RouteResult::Kind::kLocal;
    out.reply = NoRoute();
    return out;
  }
  out.route = r;
  switch (r->action) {
    case route::Route::Action::kDirectResponse: {
      out.kind = RouteResult::Kind::kLocal;
      out.reply = LocalReply{r->direct_response->status, r->direct_response->body, "-",
                             "direct_response", 0, {}, "text/plain"};
      AddRouteHeaders(*r, &out.reply);
      return out;
    }
    case route::Route::Action::kRedirect: {
      out.kind = RouteResult::Kind::kLocal;
      out.reply = LocalReply{r->redirect->status, "", "-", "direct_response", 0, {}, ""};
      out.reply.headers.emplace_back(
          "location", route::RedirectLocation(*r->redirect, out.match ? &out.match->path : nullptr,
                                              Scheme(view), view.authority, view.path,
                                              d.target.port));
      AddRouteHeaders(*r, &out.reply);
      return out;
    }
    case route::Route::Action::kForward:
      break;
  }
  const route::WeightedCluster* c = route::PickCluster(*r, random);
  if (c == nullptr || c->unresolved) {
    out.kind = RouteResult::Kind::kLocal;
    out.reply = Unresolved(r->unresolved_status);
    return out;
  }
  auto info = cfg->clusters.find(c->cluster.name);
  const mesh::Service* target = d.state->snapshot->FindServiceByKey(c->cluster.service);
  if (info == cfg->clusters.end() || target == nullptr) {
    out.kind = RouteResult::Kind::kLocal;
    out.reply = Unresolved(r->unresolved_status);
    return out;
  }
  out.kind = RouteResult::Kind::kForward;
  out.cluster = c;
  out.service = target;
  out.cluster_info = &info->second;
  return out;
}

namespace {

// Envoy's HTTP status → gRPC status mapping for local replies to gRPC clients.
int GrpcStatusOf(int http) {
  switch (http) {
    case 400: return 13;  // INTERNAL
    case 401: return 16;  // UNAUTHENTICATED
    case 403: return 7;   // PERMISSION_DENIED
    case 404: return 12;  // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504: return 14;  // UNAVAILABLE
    default: return 2;    // UNKNOWN
  }
}

bool Chosen(Worker& w, uint32_t per_million) {
  if (per_million == 0) return false;
  return per_million >= 1'000'000 || w.Random() % 1'000'000 < per_million;
}

}  // namespace

FaultDecision DecideFault(const Downstream& d, const RouteResult& r) {
  FaultDecision out;
  if (r.route == nullptr || !r.route->fault) return out;
  const route::Fault& f = *r.route->fault;
  if (f.delay.count() > 0 && Chosen(d.worker, f.delay_per_million)) {
    out.delay = f.delay;
    d.worker.CountRoute("fault_delay");
  }
  if (f.abort_status != 0 && Chosen(d.worker, f.abort_per_million)) {
    LocalReply a{f.abort_status, "fault filter abort", "FI", "fault_filter_abort",
                 f.abort_grpc >= 0 ? f.abort_grpc : GrpcStatusOf(f.abort_status), {}, "text/plain"};
    if (out.delay.count() > 0) a.flag = "DI,FI";
    out.abort = std::move(a);
    d.worker.CountRoute("fault_abort");
  }
  return out;
}

const ClusterRuntime* ClusterRuntimeFor(const Downstream& d, const RouteResult& r) {
  const ResilienceTable* t = d.state->resilience.get();
  if (t == nullptr || t->clusters.empty()) return nullptr;
  if (r.kind == RouteResult::Kind::kForward) return t->Find(r.cluster->cluster.name);
  if (r.kind != RouteResult::Kind::kDefault || d.target.service == nullptr) return nullptr;
  return t->Find(ClusterName(*d.target.service, d.target.port));
}

RetryState RetryStateFor(const RouteResult& r, base::MonoTime start) {
  if (r.route == nullptr) return RetryState(route::IstioDefaultRetry(), std::nullopt);
  std::optional<base::MonoTime> overall;
  if (r.route->timeout.count() > 0) overall = start + r.route->timeout;
  return RetryState(r.route->Retry(), overall);
}

EndpointPtr PickRoutedEndpoint(const Downstream& d, const RouteResult& r,
                               const std::string& avoid, const std::vector<uint32_t>* exclude) {
  std::optional<OutlierFilter> filter;
  if (const ClusterRuntime* rt = ClusterRuntimeFor(d, r); rt != nullptr && rt->detector) {
    filter.emplace(*rt->detector, *rt->outlier, d.worker.loop().Now());
  }
  const EndpointFilter* f = filter ? &*filter : nullptr;
  EndpointPtr ep =
      r.kind != RouteResult::Kind::kForward
          ? d.PickEndpoint(avoid, r.lb_hash, f, exclude)
          : d.worker.picker().PickInCluster(
                d.state->snapshot, r.cluster->cluster.name, *r.service, r.cluster->cluster.port,
                r.cluster_info->subset_labels, d.state->self,
                {.policy = r.policy, .hash = r.lb_hash, .avoid = avoid, .filter = f,
                 .exclude_priorities = exclude});
  // Operators see when locality failover carries traffic.
  const bool picked = r.kind == RouteResult::Kind::kForward || d.target.service != nullptr;
  if (ep != nullptr && picked && d.worker.picker().LastPriority() > 0) {
    d.worker.CountRoute("lb_locality_failover");
  }
  // PASSTHROUGH (ORIGINAL_DST) on a service-addressed request: no original
  // endpoint to pass through to; the LEAST_REQUEST fallback is counted.
  const route::TrafficPolicy* tp =
      r.kind == RouteResult::Kind::kForward ? r.policy
      : d.target.service != nullptr && d.state->routes != nullptr &&
              !d.state->routes->policies.empty()
          ? d.state->routes->PolicyFor(d.ClusterName())
          : nullptr;
  if (ep != nullptr && picked && tp != nullptr && tp->load_balancer &&
      tp->load_balancer->kind == route::LoadBalancerPolicy::Kind::kPassthrough) {
    d.worker.CountRoute("lb_passthrough_fallback");
  }
  return ep;
}

void NoteRoute(const Downstream& d, const RouteResult& r, RequestInfo& info) {
  if (r.route != nullptr) info.route_name = r.route->name;
  if (r.kind == RouteResult::Kind::kForward) {
    info.upstream_cluster = r.cluster->cluster.name;
    info.service = r.service;  // destination_service is the service routed to
  } else if (r.kind == RouteResult::Kind::kLocal) {
    d.worker.CountRoute(r.reply.details == "direct_response"
                            ? (r.route != nullptr && r.route->redirect ? "redirect"
                                                                       : "direct_response")
                            : r.reply.details);
  }
}

RewrittenTarget RewriteRequest(const RouteResult& r, std::string_view path) {
  RewrittenTarget t;
  if (r.route == nullptr || r.route->rewrite.kind == route::PathRewrite::Kind::kNone) {
    t.path = std::string(path);
  } else {
    t.path = route::RewritePath(r.route->rewrite, r.match ? &r.match->path : nullptr, path);
  }
  if (r.route != nullptr && r.route->authority_rewrite) t.authority = *r.route->authority_rewrite;
  return t;
}

namespace {

template <typename HeaderList>
void RemoveAll(HeaderList& h, std::string_view name) {
  std::erase_if(h, [&](const auto& x) { return base::EqualsIgnoreCase(x.name, name); });
}

}  // namespace

template <typename HeaderList>
void ApplyHeaderOps(const route::HeaderOps& ops, HeaderList& headers) {
  for (const auto& [name, value] : ops.set) {
    bool replaced = false;
    for (auto it = headers.begin(); it != headers.end();) {
      if (!base::EqualsIgnoreCase(it->name, name)) {
        ++it;
        continue;
      }
      if (!replaced) {
        it->value = value;
        replaced = true;
        ++it;
      } else {
        it = headers.erase(it);
      }
    }
    if (!replaced) headers.push_back({name, value});
  }
  for (const auto& [name, value] : ops.add) headers.push_back({name, value});
  for (const std::string& name : ops.remove) RemoveAll(headers, name);
}

template <typename HeaderList>
void HeaderView<HeaderList>::Values(std::string_view lower_name,
                                    std::vector<std::string_view>* out) const {
  for (const auto& h : h_) {
    if (base::EqualsIgnoreCase(h.name, lower_name)) out->push_back(h.value);
  }
}

namespace {

// The routed cluster's policy and, for consistent hashing, the request's key.
void AddLbContext(const Downstream& d, const route::RequestView& view, RouteResult* r) {
  const route::RouteConfig* cfg = d.state->routes.get();
  if (cfg == nullptr || cfg->policies.empty() || r->kind == RouteResult::Kind::kLocal) return;
  if (r->kind == RouteResult::Kind::kDefault && d.target.service == nullptr) return;  // a pod
  r->policy = cfg->PolicyFor(r->kind == RouteResult::Kind::kForward ? r->cluster->cluster.name
                                                                    : d.ClusterName());
  if (r->policy == nullptr || !r->policy->load_balancer) return;
  LbRequest lr = HashRequest(*r->policy->load_balancer, &view, d.peer.ip(), d.worker.Random());
  r->lb_hash = lr.hash;
  if (!lr.set_cookie.empty()) {
    r->lb_response_headers.add.emplace_back("set-cookie", lr.set_cookie);
    d.worker.CountRoute("lb_hash_cookie_issued");
  } else if (!lr.hash && r->policy->load_balancer->Hashed()) {
    d.worker.CountRoute("lb_hash_key_missing");  // a random endpoint instead
  }
}

}  // namespace

template <typename HeaderList>
RouteResult RouteHeaders(const Downstream& d, std::string_view method, std::string_view path,
                         std::string_view authority, const HeaderList& headers,
                         uint64_t random) {
  HeaderView<HeaderList> hv(headers);
  route::RequestView view;
  view.method = method;
  view.path = path;
  view.authority = authority;
  view.port = d.target.port;
  view.headers = &hv;
  RouteResult r = RouteRequest(d, view, random);
  AddLbContext(d, view, &r);
  return r;
}

template RouteResult RouteHeaders(const Downstream&, std::string_view, std::string_view,
                                  std::string_view, const http1::Headers&, uint64_t);
template RouteResult RouteHeaders(const Downstream&, std::string_view, std::string_view,
                                  std::string_view, const http2::H2Headers&, uint64_t);
template void ApplyHeaderOps(const route::HeaderOps&, http1::Headers&);
template void ApplyHeaderOps(const route::HeaderOps&, http2::H2Headers&);
template class HeaderView<http1::Headers>;
template class HeaderView<http2::H2Headers>;

}  // namespace ambit::waypoint
