// The routing part of /config_dump: route tables per service port with each
// route's matches and action, and the subset clusters they reach (with the
// endpoints a request could go to). Shapes follow Envoy's vocabulary so the
// dump reads like a waypoint's RouteConfiguration and clusters.
#include "waypoint/app/route_dump.h"

#include <fmt/format.h>

#include "waypoint/proxy/cluster.h"

namespace ambit::waypoint {

namespace {

using nlohmann::json;

std::string_view StringKind(route::StringMatcher::Kind k) {
  switch (k) {
    case route::StringMatcher::Kind::kExact: return "exact";
    case route::StringMatcher::Kind::kPrefix: return "prefix";
    case route::StringMatcher::Kind::kSuffix: return "suffix";
    case route::StringMatcher::Kind::kRegex: return "regex";
    case route::StringMatcher::Kind::kPresent: return "present";
  }
  return "?";
}

json StringJson(const route::StringMatcher& m) {
  json j = {{StringKind(m.kind), m.kind == route::StringMatcher::Kind::kPresent
                                     ? json(true)
                                     : json(m.value)}};
  if (m.ignore_case) j["ignoreCase"] = true;
  return j;
}

json PathJson(const route::PathMatcher& p) {
  switch (p.kind) {
    case route::PathMatcher::Kind::kAny: return {{"prefix", "/"}};
    case route::PathMatcher::Kind::kExact: return {{"path", p.value}, {"ignoreCase", p.ignore_case}};
    case route::PathMatcher::Kind::kPrefix:
      return {{"prefix", p.value}, {"ignoreCase", p.ignore_case}};
    case route::PathMatcher::Kind::kPathPrefix: return {{"pathSeparatedPrefix", p.value}};
    case route::PathMatcher::Kind::kRegex: return {{"safeRegex", p.value}};
  }
  return {};
}

json MatchJson(const route::RouteMatch& m) {
  json j = PathJson(m.path);
  if (m.method) j["method"] = StringJson(*m.method);
  if (m.authority) j["authority"] = StringJson(*m.authority);
  if (!m.headers.empty()) {
    json hs = json::array();
    for (const auto& h : m.headers) {
      json x = StringJson(h.value);
      x["name"] = h.name;
      if (h.invert) x["invert"] = true;
      hs.push_back(x);
    }
    j["headers"] = hs;
  }
  if (!m.query.empty()) {
    json qs = json::array();
    for (const auto& q : m.query) {
      json x = StringJson(q.value);
      x["name"] = q.name;
      qs.push_back(x);
    }
    j["queryParameters"] = qs;
  }
  if (m.port) j["port"] = *m.port;
  if (!m.source_labels.empty()) j["sourceLabels"] = m.source_labels;
  if (m.source_namespace) j["sourceNamespace"] = *m.source_namespace;
  return j;
}

json OpsJson(const route::HeaderOps& ops) {
  json j = json::object();
  if (!ops.set.empty()) j["set"] = ops.set;
  if (!ops.add.empty()) j["add"] = ops.add;
  if (!ops.remove.empty()) j["remove"] = ops.remove;
  return j;
}

std::string_view RewriteKind(route::PathRewrite::Kind k) {
  switch (k) {
    case route::PathRewrite::Kind::kNone: return "none";
    case route::PathRewrite::Kind::kPrefix: return "prefixRewrite";
    case route::PathRewrite::Kind::kFull: return "fullPath";
    case route::PathRewrite::Kind::kReplacePrefixMatch: return "replacePrefixMatch";
    case route::PathRewrite::Kind::kRegex: return "regexRewrite";
  }
  return "?";
}

json RouteJson(const route::Route& r) {
  json j = {{"name", r.name}, {"source", r.source}};
  json ms = json::array();
  for (const auto& m : r.matches) ms.push_back(MatchJson(m));
  j["match"] = ms.empty() ? json::array({json{{"prefix", "/"}}}) : ms;
  switch (r.action) {
    case route::Route::Action::kDirectResponse:
      j["directResponse"] = {{"status", r.direct_response->status},
                             {"bodyBytes", r.direct_response->body.size()}};
      break;
    case route::Route::Action::kRedirect: {
      json rd = {{"responseCode", r.redirect->status}};
      if (r.redirect->scheme) rd["scheme"] = *r.redirect->scheme;
      if (r.redirect->authority) rd["host"] = *r.redirect->authority;
      if (r.redirect->port) rd["port"] = *r.redirect->port;
      if (r.redirect->path.kind != route::PathRewrite::Kind::kNone) {
        rd[std::string(RewriteKind(r.redirect->path.kind))] = r.redirect->path.value;
      }
      j["redirect"] = rd;
      break;
    }
    case route::Route::Action::kForward: {
      json wcs = json::array();
      for (const auto& c : r.clusters) {
        json x = {{"name", c.cluster.name}, {"weight", c.weight}};
        if (c.unresolved) x["unresolved"] = fmt::format("answers {}", r.unresolved_status);
        if (!c.request_headers.empty()) x["requestHeaders"] = OpsJson(c.request_headers);
        if (!c.response_headers.empty()) x["responseHeaders"] = OpsJson(c.response_headers);
        wcs.push_back(x);
      }
      json action = {{"weightedClusters", wcs}, {"totalWeight", r.total_weight}};
      if (r.rewrite.kind != route::PathRewrite::Kind::kNone) {
        action[std::string(RewriteKind(r.rewrite.kind))] = r.rewrite.value;
      }
      if (r.authority_rewrite) action["hostRewrite"] = *r.authority_rewrite;
      if (!r.mirrors.empty()) {
        json mm = json::array();
        for (const auto& m : r.mirrors) {
          mm.push_back({{"cluster", m.cluster.name},
                        {"percent", m.per_million / 10000.0},
                        {"unresolved", m.unresolved}});
        }
        action["requestMirrorPolicies"] = mm;
      }
      j["route"] = action;
      break;
    }
  }
  if (r.timeout.count() > 0) {
    j["timeout"] = fmt::format("{}s", std::chrono::duration<double>(r.timeout).count());
  }
  {
    // Envoy's route.retry_policy, as the waypoint applies it.
    const route::RetryPolicy& rp = r.Retry();
    nlohmann::json retry = {{"num_retries", rp.num_retries},
                            {"retry_on", rp.RetryOnText()},
                            {"source", rp.is_default ? "istio default" : rp.source}};
    if (!rp.status_codes.empty()) retry["retriable_status_codes"] = rp.status_codes;
    if (rp.per_try_timeout.count() > 0) {
      retry["per_try_timeout"] =
          fmt::format("{}s", std::chrono::duration<double>(rp.per_try_timeout).count());
    }
    retry["backoff_base_interval"] =
        fmt::format("{}s", std::chrono::duration<double>(rp.backoff_base).count());
    if (rp.retry_remote_localities) retry["retry_remote_localities"] = true;
    j["retry_policy"] = std::move(retry);
  }
  if (r.fault) {
    json f = json::object();
    if (r.fault->delay.count() > 0) {
      f["delay"] = {{"fixedDelay",
                     fmt::format("{}s", std::chrono::duration<double>(r.fault->delay).count())},
                    {"percent", r.fault->delay_per_million / 10000.0}};
    }
    if (r.fault->abort_status != 0) {
      f["abort"] = {{"httpStatus", r.fault->abort_status},
                    {"percent", r.fault->abort_per_million / 10000.0}};
      if (r.fault->abort_grpc >= 0) f["abort"]["grpcStatus"] = r.fault->abort_grpc;
    }
    j["fault"] = f;
  }
  if (!r.request_headers.empty()) j["requestHeaders"] = OpsJson(r.request_headers);
  if (!r.response_headers.empty()) j["responseHeaders"] = OpsJson(r.response_headers);
  return j;
}

std::string_view TableKind(route::RouteTable::Kind k) {
  switch (k) {
    case route::RouteTable::Kind::kVirtualService: return "VirtualService";
    case route::RouteTable::Kind::kHttpRoute: return "HTTPRoute";
    case route::RouteTable::Kind::kGrpcRoute: return "GRPCRoute";
  }
  return "?";
}

}  // namespace

json RouteTablesJson(const route::RouteConfig& cfg, const mesh::Snapshot& snap) {
  json tables = json::array();
  for (const auto& [key, t] : cfg.tables) {
    const mesh::Service* svc = snap.FindServiceByKey(t.service);
    json routes = json::array();
    for (const auto& r : t.routes) routes.push_back(RouteJson(r));
    tables.push_back({{"name", fmt::format("{}:{}", svc ? svc->hostname : t.service, t.port)},
                      {"service", t.service},
                      {"port", t.port},
                      {"kind", TableKind(t.kind)},
                      {"boundBy", t.bound},
                      {"routes", routes}});
  }
  return tables;
}

json LoadBalancerJson(const route::TrafficPolicy* policy) {
  using LB = route::LoadBalancerPolicy;
  const LB lb = policy != nullptr && policy->load_balancer ? *policy->load_balancer : LB{};
  json out = {{"policy", route::KindName(lb.kind)},
              {"source", policy != nullptr && policy->load_balancer ? policy->source : "default"}};
  if (lb.Hashed()) {
    out["hashKey"] = route::HashKeyName(lb.hash_key);
    if (!lb.hash_name.empty()) out["hashName"] = lb.hash_name;
    if (lb.cookie_ttl) out["cookieTtlSeconds"] = lb.cookie_ttl->count();
    if (lb.kind == LB::Kind::kRingHash) out["minimumRingSize"] = lb.ring_size;
    if (lb.kind == LB::Kind::kMaglev) out["tableSize"] = lb.table_size;
  }
  if (lb.warmup.count() > 0) out["warmupMs"] = lb.warmup.count();
  const bool failover = policy != nullptr && policy->outlier_written;
  if (lb.locality && !lb.locality->enabled) {
    out["locality"] = "disabled";
  } else if (lb.locality && !lb.locality->distribute.empty()) {
    json d = json::array();
    for (const auto& e : lb.locality->distribute) {
      json to = json::object();
      for (const auto& [k, w] : e.to) to[k] = w;
      d.push_back({{"from", e.from}, {"to", to}});
    }
    out["locality"] = {{"distribute", d}};
  } else if (failover) {
    json f = json::array();
    if (lb.locality) {
      for (const auto& e : lb.locality->failover) f.push_back({{"from", e.from}, {"to", e.to}});
    }
    out["locality"] = {{"failover", f},
                       {"failoverPriority", lb.locality ? lb.locality->failover_priority
                                                        : std::vector<std::string>{}}};
  } else {
    out["locality"] = "none (failover needs outlierDetection)";
  }
  return out;
}

json SubsetClustersJson(const route::RouteConfig& cfg, const mesh::Snapshot& snap,
                        const mesh::Workload& self) {
  json out = json::array();
  for (const auto& [name, c] : cfg.clusters) {
    if (c.ref.subset.empty()) continue;  // whole-service clusters are listed already
    const mesh::Service* svc = snap.FindServiceByKey(c.ref.service);
    if (svc == nullptr) continue;
    json eps = json::array();
    for (const auto& ep :
         EndpointPicker::Endpoints(snap, *svc, c.ref.port, self, &c.subset_labels)) {
      eps.push_back({{"address", ep.address.ToString()},
                     {"workload", ep.workload->ns + "/" + ep.workload->name},
                     {"hbone", ep.hbone}});
    }
    out.push_back({{"name", name},
                   {"service", svc->hostname},
                   {"port", c.ref.port},
                   {"subset", c.ref.subset},
                   {"subsetLabels", c.subset_labels},
                   {"source", c.source},
                   {"loadBalancer", LoadBalancerJson(cfg.PolicyFor(name))},
                   {"endpoints", eps}});
  }
  return out;
}

}  // namespace ambit::waypoint
