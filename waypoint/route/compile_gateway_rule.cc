// One HTTPRoute / GRPCRoute rule → routes: filters, backends, the action.
// Facts: gateway-api apis/v1/httproute_types.go (HTTPRouteRule and
// HTTPRouteFilter validations: RequestRedirect not with backendRefs nor with
// URLRewrite, header modifiers / redirect / rewrite not repeated,
// ReplacePrefixMatch only with exactly one PathPrefix match, redirect status
// 301/302/303/307/308 default 302, mirror percent 0..100 or fraction with
// denominator default 100; a filter that cannot be applied MUST NOT be
// skipped) and grpcroute_types.go (GRPCRouteFilter types).
#include <fmt/format.h>

#include <chrono>
#include <set>

#include <algorithm>

#include "waypoint/route/compile_gateway.h"
#include "waypoint/route/compile_retry.h"

namespace ambit::waypoint::route::internal {

namespace {

constexpr std::string_view kFilterKeys[][2] = {
    {"RequestHeaderModifier", "requestHeaderModifier"},
    {"ResponseHeaderModifier", "responseHeaderModifier"},
    {"RequestRedirect", "requestRedirect"},
    {"URLRewrite", "urlRewrite"},
    {"RequestMirror", "requestMirror"},
    {"ExtensionRef", "extensionRef"},
    {"CORS", "cors"},
    {"ExternalAuth", "externalAuth"},
};

struct RuleFilters {
  HeaderOps request, response;
  std::optional<Redirect> redirect;
  bool url_rewrite = false;
  PathRewrite rewrite;
  std::optional<std::string> authority;
  std::vector<Mirror> mirrors;
  bool prefix_rewrite = false;  // ReplacePrefixMatch in a rewrite or redirect
  bool fail_closed = false;     // a filter we cannot apply: answer 500
};

bool PathModifier(const Doc& doc, const YAML::Node& n, std::string_view field, PathRewrite* out,
                  bool* prefix, Sink& sink) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map; rule dropped", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"type", "replaceFullPath", "replacePrefixMatch"}, sink);
  const auto type = Required(doc, n, "type", field, sink);
  if (!type) return false;
  const bool full = *type == "ReplaceFullPath";
  if (!full && *type != "ReplacePrefixMatch") {
    sink.Add(doc, Child(n, "type"),
             fmt::format("{}.type: '{}' is not ReplaceFullPath or ReplacePrefixMatch; rule "
                         "dropped",
                         field, *type));
    return false;
  }
  const std::string_view key = full ? "replaceFullPath" : "replacePrefixMatch";
  const std::string_view other = full ? "replacePrefixMatch" : "replaceFullPath";
  if (!Present(Child(n, key)) || Present(Child(n, other))) {
    sink.Add(doc, n,
             fmt::format("{}: type {} needs {} (and not {}); rule dropped", field, *type, key,
                         other));
    return false;
  }
  const auto value = Scalar(doc, Child(n, key), Field(field, key), sink);
  if (!value) return false;
  out->kind = full ? PathRewrite::Kind::kFull : PathRewrite::Kind::kReplacePrefixMatch;
  out->value = *value;
  *prefix = *prefix || !full;
  return true;
}

bool RequestRedirect(const Doc& doc, const YAML::Node& n, std::string_view field, RuleFilters* f,
                     Sink& sink) {
  ReportUnknownKeys(doc, n, field, {"scheme", "hostname", "path", "port", "statusCode"}, sink);
  Redirect r;
  r.gateway_port_rules = true;
  r.status = 302;
  if (Present(Child(n, "scheme"))) {
    const auto s = Scalar(doc, Child(n, "scheme"), Field(field, "scheme"), sink);
    if (!s) return false;
    if (*s != "http" && *s != "https") {
      sink.Add(doc, Child(n, "scheme"),
               fmt::format("{}.scheme: '{}' is not http or https; rule dropped", field, *s));
      return false;
    }
    r.scheme = *s;
  }
  if (Present(Child(n, "hostname"))) {
    const auto h = Required(doc, n, "hostname", field, sink);
    if (!h) return false;
    r.authority = *h;
  }
  if (Present(Child(n, "port"))) {
    const auto p = Number(doc, Child(n, "port"), Field(field, "port"), 1, 65535, "rule dropped", sink);
    if (!p) return false;
    r.port = static_cast<uint16_t>(*p);
  }
  if (Present(Child(n, "path")) &&
      !PathModifier(doc, Child(n, "path"), Field(field, "path"), &r.path, &f->prefix_rewrite, sink)) {
    return false;
  }
  if (Present(Child(n, "statusCode"))) {
    const auto c =
        Number(doc, Child(n, "statusCode"), Field(field, "statusCode"), 0, 999, "rule dropped", sink);
    if (!c) return false;
    if (*c != 301 && *c != 302 && *c != 303 && *c != 307 && *c != 308) {
      sink.Add(doc, Child(n, "statusCode"),
               fmt::format("{}.statusCode: {} is not 301, 302, 303, 307 or 308; rule dropped",
                           field, *c));
      return false;
    }
    r.status = static_cast<int>(*c);
  }
  f->redirect = std::move(r);
  return true;
}

bool UrlRewrite(const Doc& doc, const YAML::Node& n, std::string_view field, RuleFilters* f,
                Sink& sink) {
  ReportUnknownKeys(doc, n, field, {"hostname", "path"}, sink);
  if (Present(Child(n, "hostname"))) {
    const auto h = Required(doc, n, "hostname", field, sink);
    if (!h) return false;
    f->authority = *h;
  }
  if (Present(Child(n, "path")) &&
      !PathModifier(doc, Child(n, "path"), Field(field, "path"), &f->rewrite, &f->prefix_rewrite,
                    sink)) {
    return false;
  }
  f->url_rewrite = true;
  return true;
}

bool RequestMirror(const Doc& doc, const YAML::Node& n, std::string_view field, RuleFilters* f,
                   GatewayContext& ctx) {
  Sink& sink = ctx.sink;
  ReportUnknownKeys(doc, n, field, {"backendRef", "percent", "fraction"}, sink);
  const YAML::Node ref = Child(n, "backendRef");
  if (!Present(ref)) {
    sink.Add(doc, n, fmt::format("{}.backendRef: required; rule dropped", field));
    return false;
  }
  const YAML::Node pct = Child(n, "percent"), frac = Child(n, "fraction");
  if (Present(pct) && Present(frac)) {
    sink.Add(doc, n, fmt::format("{}: only one of percent or fraction may be set; rule dropped",
                                 field));
    return false;
  }
  Mirror m;
  if (Present(pct)) {
    const auto p = Number(doc, pct, Field(field, "percent"), 0, 100, "rule dropped", sink);
    if (!p) return false;
    m.per_million = static_cast<uint32_t>(*p * 10'000);
  } else if (Present(frac)) {
    const std::string ff = Field(field, "fraction");
    ReportUnknownKeys(doc, frac, ff, {"numerator", "denominator"}, sink);
    if (!Present(Child(frac, "numerator"))) {
      sink.Add(doc, frac, fmt::format("{}.numerator: required; rule dropped", ff));
      return false;
    }
    const auto num = Number(doc, Child(frac, "numerator"), Field(ff, "numerator"), 0, INT32_MAX,
                            "rule dropped", sink);
    std::optional<uint64_t> den = 100;
    if (Present(Child(frac, "denominator"))) {
      den = Number(doc, Child(frac, "denominator"), Field(ff, "denominator"), 1, INT32_MAX,
                   "rule dropped", sink);
    }
    if (!num || !den) return false;
    if (*num > *den) {
      sink.Add(doc, frac,
               fmt::format("{}: numerator {} is above denominator {}; rule dropped", ff, *num, *den));
      return false;
    }
    m.per_million = static_cast<uint32_t>(*num * 1'000'000 / *den);
  }
  ReportUnknownKeys(doc, ref, Field(field, "backendRef"), {"group", "kind", "name", "namespace", "port"},
                    sink);
  ResolvedBackend b =
      ResolveBackendRef(doc, ref, Field(field, "backendRef"), "the mirror is skipped", ctx);
  m.cluster = std::move(b.cluster);
  m.unresolved = b.unresolved;
  f->mirrors.push_back(std::move(m));
  return true;
}

// One `filters` entry; false when the rule must be dropped.
bool Filter(const Doc& doc, bool grpc, const YAML::Node& fl, std::string_view f, RuleFilters* out,
            GatewayContext& ctx) {
  Sink& sink = ctx.sink;
  if (!fl.IsMap()) {
    sink.Add(doc, fl, fmt::format("{}: expected a map; rule dropped", f));
    return false;
  }
  const auto type = Required(doc, fl, "type", f, sink);
  if (!type) return false;
  std::string_view key;
  for (const auto& [t, k] : kFilterKeys) {
    if (t == *type) key = k;
  }
  const bool supported =
      !key.empty() && (grpc ? (*type == "RequestHeaderModifier" ||
                               *type == "ResponseHeaderModifier" || *type == "RequestMirror")
                            : (*type != "ExtensionRef" && *type != "CORS" &&
                               *type != "ExternalAuth"));
  if (!supported) {
    // The spec: a filter that cannot be resolved MUST NOT be skipped; the
    // requests it would have processed get an error (ExternalAuth fails closed).
    sink.Add(doc, Child(fl, "type"),
             fmt::format("{}.type: {} filter is not supported{}; requests matching this rule are "
                         "answered 500",
                         f, *type, key.empty() ? "" : " yet"));
    out->fail_closed = true;
    return true;
  }
  for (const auto& kv : fl) {
    const std::string k = kv.first.IsScalar() ? kv.first.Scalar() : "?";
    if (k == "type" || k == key) continue;
    sink.Add(doc, kv.first,
             fmt::format("{}.{}: must not be set for a {} filter; rule dropped", f, k, *type));
    return false;
  }
  const YAML::Node body = Child(fl, key);
  const std::string bf = Field(f, key);
  if (!Present(body)) {
    sink.Add(doc, fl, fmt::format("{}: required for type {}; rule dropped", bf, *type));
    return false;
  }
  auto repeated = [&](bool already) {
    if (already) sink.Add(doc, fl, fmt::format("{}: {} filter cannot be repeated; rule dropped", f, *type));
    return already;
  };
  if (*type == "RequestHeaderModifier" || *type == "ResponseHeaderModifier") {
    HeaderOps& ops = *type == "RequestHeaderModifier" ? out->request : out->response;
    if (repeated(!ops.empty())) return false;
    return CompileHeaderModifier(doc, body, bf, &ops, sink);
  }
  if (*type == "RequestMirror") return RequestMirror(doc, body, bf, out, ctx);
  const bool redirect = *type == "RequestRedirect";
  if (repeated(redirect ? out->redirect.has_value() : out->url_rewrite)) return false;
  if (redirect ? out->url_rewrite : out->redirect.has_value()) {
    sink.Add(doc, fl,
             fmt::format("{}: RequestRedirect and URLRewrite cannot be combined in one rule; rule "
                         "dropped",
                         f));
    return false;
  }
  return redirect ? RequestRedirect(doc, body, bf, out, sink) : UrlRewrite(doc, body, bf, out, sink);
}

std::vector<RankedRoute> CompileRule(const Doc& doc, bool grpc, const YAML::Node& rule, size_t i,
                                     GatewayContext& ctx) {
  Sink& sink = ctx.sink;
  const std::string field = Field("spec.rules", i);
  if (!rule.IsMap()) {
    sink.Add(doc, rule, fmt::format("{}: expected a map; rule dropped", field));
    return {};
  }
  if (grpc) {
    ReportUnknownKeys(doc, rule, field,
                      {"name", "matches", "filters", "backendRefs", "sessionPersistence"}, sink);
  } else {
    ReportUnknownKeys(doc, rule, field,
                      {"name", "matches", "filters", "backendRefs", "timeouts", "retry",
                       "sessionPersistence"},
                      sink);
  }
  // retry (HTTPRoute only; GRPCRoute has none).
  std::optional<RetryPolicy> retry;
  if (const YAML::Node r = Child(rule, "retry"); !grpc && Present(r)) {
    retry = CompileGatewayRetry(doc, r, Field(field, "retry"), sink);
    if (!retry) return {};
  }
  // timeouts.request bounds the whole request, backendRequest each try
  // toward the backend (istiod: the per-try timeout with a retry, else the
  // route's timeout; the shorter of the two applies). "0s" = none.
  std::chrono::nanoseconds timeout{0};
  if (const YAML::Node t = Child(rule, "timeouts"); !grpc && Present(t)) {
    const std::string tf = Field(field, "timeouts");
    if (!t.IsMap()) {
      sink.Add(doc, t, fmt::format("{}: expected a map; rule dropped", tf));
      return {};
    }
    ReportUnknownKeys(doc, t, tf, {"request", "backendRequest"}, sink);
    std::optional<std::chrono::nanoseconds> request, backend;
    for (const char* key : {"request", "backendRequest"}) {
      const YAML::Node v = Child(t, key);
      if (!Present(v)) continue;
      auto d = internal::Duration(doc, v, Field(tf, key), sink);
      if (!d) return {};
      (std::string_view(key) == "request" ? request : backend) = *d;
    }
    if (request && backend && request->count() > 0 &&
        (backend->count() == 0 || *backend > *request)) {
      sink.Add(doc, Child(t, "backendRequest"),
               fmt::format("{}.backendRequest: must not be longer than request; rule dropped",
                           tf));
      return {};
    }
    if (retry && backend && backend->count() > 0 && retry->num_retries > 0) {
      retry->per_try_timeout = *backend;
      backend.reset();
    }
    for (const auto& d : {request, backend}) {
      if (d && d->count() > 0 && (timeout.count() == 0 || *d < timeout)) timeout = *d;
    }
  }
  if (Present(Child(rule, "sessionPersistence"))) {
    sink.Add(doc, Child(rule, "sessionPersistence"),
             fmt::format("{}: not supported yet; ignored", Field(field, "sessionPersistence")));
  }
  std::string label = fmt::format("rule[{}]", i);
  if (Present(Child(rule, "name"))) {
    const auto name = Scalar(doc, Child(rule, "name"), Field(field, "name"), sink);
    if (name && !name->empty()) label = *name;
  }

  std::vector<CompiledMatch> matches;
  if (!(grpc ? CompileGrpcMatches : CompileHttpMatches)(doc, rule, field, &matches, sink)) return {};

  RuleFilters f;
  const YAML::Node filters = Child(rule, "filters");
  if (Present(filters)) {
    if (!filters.IsSequence()) {
      sink.Add(doc, filters, fmt::format("{}.filters: expected a list; rule dropped", field));
      return {};
    }
    for (size_t k = 0; k < filters.size(); ++k) {
      if (!Filter(doc, grpc, filters[k], Field(Field(field, "filters"), k), &f, ctx)) return {};
    }
  }
  if (f.prefix_rewrite &&
      (matches.size() != 1 || matches[0].match.path.kind != PathMatcher::Kind::kPathPrefix)) {
    sink.Add(doc, filters,
             fmt::format("{}.filters: ReplacePrefixMatch needs exactly one PathPrefix match in "
                         "the rule; rule dropped",
                         field));
    return {};
  }

  const YAML::Node refs = Child(rule, "backendRefs");
  const std::string rf = Field(field, "backendRefs");
  if (Present(refs) && !refs.IsSequence()) {
    sink.Add(doc, refs, fmt::format("{}: expected a list; rule dropped", rf));
    return {};
  }
  const bool has_backends = Present(refs) && refs.size() > 0;
  if (f.redirect && has_backends) {
    sink.Add(doc, refs,
             fmt::format("{}: RequestRedirect cannot be used together with backendRefs; rule "
                         "dropped",
                         rf));
    return {};
  }
  Route base;
  base.source = sink.Location(doc, rule);
  base.grpc = grpc;
  base.unresolved_status = 500;
  for (size_t k = 0; has_backends && k < refs.size(); ++k) {
    WeightedCluster wc;
    if (!CompileBackendRef(doc, refs[k], Field(rf, k), ctx, &wc)) return {};
    base.total_weight += wc.weight;
    base.clusters.push_back(std::move(wc));
  }
  base.request_headers = std::move(f.request);
  base.response_headers = std::move(f.response);
  base.rewrite = std::move(f.rewrite);
  base.authority_rewrite = std::move(f.authority);
  base.mirrors = std::move(f.mirrors);
  base.timeout = timeout;
  base.retry = retry;
  if (f.fail_closed || (!f.redirect && !has_backends)) {
    // No backendRefs and no redirect: the spec answers 500 as for invalid backends.
    base.action = Route::Action::kDirectResponse;
    base.direct_response = DirectResponse{500, ""};
    base.clusters.clear();
    base.total_weight = 0;
  } else if (f.redirect) {
    base.action = Route::Action::kRedirect;
    base.redirect = std::move(f.redirect);
  }

  std::vector<RankedRoute> out;
  for (size_t j = 0; j < matches.size(); ++j) {
    RankedRoute rr{base, matches[j].rank};
    rr.route.name = fmt::format("{} {} {} match[{}]", doc.kind, doc.Key(), label, j);
    rr.route.matches = {std::move(matches[j].match)};
    rr.rank.rule = i;
    rr.rank.match = j;
    out.push_back(std::move(rr));
  }
  return out;
}

}  // namespace

std::vector<RankedRoute> CompileGatewayRules(const Doc& doc, bool grpc, GatewayContext& ctx) {
  std::vector<RankedRoute> out;
  const YAML::Node rules = Child(doc.spec, "rules");
  if (!Present(rules)) {
    if (grpc) {
      ctx.sink.Add(doc, doc.spec, "spec.rules: none; no request matches (gRPC UNIMPLEMENTED)");
      return out;
    }
    // HTTPRoute's CRD default: one rule with the default match and no backends.
    ctx.sink.Add(doc, doc.spec,
                 "spec.rules: none; the Gateway API default (one rule, PathPrefix /, no "
                 "backendRefs) answers every request 500");
    return CompileRule(doc, grpc, YAML::Node(YAML::NodeType::Map), 0, ctx);
  }
  if (!rules.IsSequence()) {
    ctx.sink.Add(doc, rules, "spec.rules: expected a list; resource not applied");
    return out;
  }
  std::set<std::string> names;  // rule names are unique within a route (CRD validation)
  for (size_t i = 0; i < rules.size(); ++i) {
    const YAML::Node name = Child(rules[i], "name");
    if (Present(name) && name.IsScalar() && !name.Scalar().empty() &&
        !names.insert(name.Scalar()).second) {
      ctx.sink.Add(doc, name, fmt::format("spec.rules[{}].name: duplicate rule name '{}'; rule "
                                          "dropped", i, name.Scalar()));
      continue;
    }
    std::vector<RankedRoute> r = CompileRule(doc, grpc, rules[i], i, ctx);
    std::move(r.begin(), r.end(), std::back_inserter(out));
  }
  return out;
}

}  // namespace ambit::waypoint::route::internal
