// HTTPRoute / GRPCRoute `matches` → RouteMatch plus the precedence inputs.
// Field semantics: gateway-api apis/v1/httproute_types.go (HTTPRouteMatch,
// HTTPPathMatch, HTTPHeaderMatch, HTTPQueryParamMatch, HTTPMethod) and
// grpcroute_types.go (GRPCRouteMatch, GRPCMethodMatch).
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "common/base/ascii.h"
#include "waypoint/route/compile_gateway.h"

namespace ambit::waypoint::route::internal {

std::optional<std::string> OptScalar(const Doc& doc, const YAML::Node& n, std::string_view field,
                                     std::string_view def, Sink& sink) {
  if (!Present(n)) return std::string(def);
  return Scalar(doc, n, field, sink);
}

std::optional<std::string> Required(const Doc& doc, const YAML::Node& parent, std::string_view key,
                                    std::string_view field, Sink& sink, std::string_view what) {
  const YAML::Node n = Child(parent, key);
  const std::string f = Field(field, key);
  if (!Present(n)) {
    sink.Add(doc, parent, fmt::format("{}: required; {}", f, what));
    return std::nullopt;
  }
  if (!n.IsScalar()) {
    sink.Add(doc, n, fmt::format("{}: expected a string; {}", f, what));
    return std::nullopt;
  }
  if (n.Scalar().empty()) {
    sink.Add(doc, n, fmt::format("{}: must not be empty; {}", f, what));
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<uint64_t> Number(const Doc& doc, const YAML::Node& n, std::string_view field,
                               uint64_t min, uint64_t max, std::string_view what, Sink& sink) {
  uint64_t v = 0;
  bool ok = n.IsDefined() && n.IsScalar() && !n.Scalar().empty();
  if (ok) {
    const std::string& s = n.Scalar();
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    ok = ec == std::errc() && p == s.data() + s.size() && v >= min && v <= max;
  }
  if (!ok) {
    sink.Add(doc, n,
             fmt::format("{}: '{}' is not a number in {}..{}; {}", field,
                         n.IsDefined() && n.IsScalar() ? n.Scalar() : std::string("?"), min, max,
                         what));
    return std::nullopt;
  }
  return v;
}

namespace {

constexpr std::string_view kMethods[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                         "CONNECT", "OPTIONS", "TRACE", "PATCH"};

// Exact / RegularExpression value matcher shared by headers and queryParams.
bool ValueMatcher(const Doc& doc, const YAML::Node& n, std::string_view field, StringMatcher* out,
                  Sink& sink) {
  const auto type = OptScalar(doc, Child(n, "type"), Field(field, "type"), "Exact", sink);
  const auto value = Required(doc, n, "value", field, sink);
  if (!type || !value) return false;
  if (*type == "Exact") {
    out->kind = StringMatcher::Kind::kExact;
    out->value = *value;
    return true;
  }
  if (*type == "RegularExpression") {
    out->kind = StringMatcher::Kind::kRegex;
    out->value = *value;
    out->regex = Regex(doc, Child(n, "value"), Field(field, "value"), *value, sink);
    return out->regex != nullptr;
  }
  sink.Add(doc, Child(n, "type"),
           fmt::format("{}.type: '{}' is not Exact or RegularExpression; rule dropped", field,
                       *type));
  return false;
}

// `headers` / `queryParams` of one match. A repeated name keeps only the
// first entry (the spec: later equivalent names MUST be ignored). Header
// names are compared lower-cased, query names as written.
template <typename Matcher>
bool NameValueMatches(const Doc& doc, const YAML::Node& list, std::string_view field,
                      bool lower, std::string_view noun, std::vector<Matcher>* out, Sink& sink) {
  if (!Present(list)) return true;
  if (!list.IsSequence()) {
    sink.Add(doc, list, fmt::format("{}: expected a list; rule dropped", field));
    return false;
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node n = list[i];
    const std::string f = Field(field, i);
    ReportUnknownKeys(doc, n, f, {"type", "name", "value"}, sink);
    const auto name = Required(doc, n, "name", f, sink);
    if (!name) return false;
    Matcher m;
    m.name = lower ? base::ToLower(*name) : *name;
    if (!ValueMatcher(doc, n, f, &m.value, sink)) return false;
    if (!seen.insert(m.name).second) {
      sink.Add(doc, n,
               fmt::format("{}: {} '{}' is already matched by an earlier entry; ignored (only "
                           "the first counts)",
                           f, noun, m.name));
      continue;
    }
    out->push_back(std::move(m));
  }
  return true;
}

bool HeaderMatches(const Doc& doc, const YAML::Node& list, std::string_view field,
                   std::vector<HeaderMatcher>* out, Sink& sink) {
  return NameValueMatches(doc, list, field, true, "header", out, sink);
}

bool QueryMatches(const Doc& doc, const YAML::Node& list, std::string_view field,
                  std::vector<QueryMatcher>* out, Sink& sink) {
  return NameValueMatches(doc, list, field, false, "query parameter", out, sink);
}

bool PathMatch(const Doc& doc, const YAML::Node& n, std::string_view field, PathMatcher* out,
               RouteRank* rank, Sink& sink) {
  const auto type = OptScalar(doc, Child(n, "type"), Field(field, "type"), "PathPrefix", sink);
  const auto value = OptScalar(doc, Child(n, "value"), Field(field, "value"), "/", sink);
  if (!type || !value) return false;
  const YAML::Node at = Present(Child(n, "value")) ? Child(n, "value") : n;
  if (*type == "RegularExpression") {
    out->kind = PathMatcher::Kind::kRegex;
    out->value = *value;
    out->regex = Regex(doc, at, Field(field, "value"), *value, sink);
    rank->path_kind = 1;
    rank->path_len = value->size();
    return out->regex != nullptr;
  }
  if (*type != "Exact" && *type != "PathPrefix") {
    sink.Add(doc, Child(n, "type"),
             fmt::format("{}.type: '{}' is not Exact, PathPrefix or RegularExpression; rule "
                         "dropped",
                         field, *type));
    return false;
  }
  if (value->empty() || (*value)[0] != '/' || value->find("//") != std::string::npos) {
    sink.Add(doc, at,
             fmt::format("{}.value: '{}' must be an absolute path without '//'; rule dropped",
                         field, *value));
    return false;
  }
  if (*type == "Exact") {
    out->kind = PathMatcher::Kind::kExact;
    out->value = *value;
    rank->path_kind = 3;
  } else {
    // A trailing '/' is ignored ("/foo/" matches like "/foo"), except the root.
    std::string v = *value;
    while (v.size() > 1 && v.back() == '/') v.pop_back();
    out->kind = PathMatcher::Kind::kPathPrefix;
    out->value = std::move(v);
    rank->path_kind = 2;
  }
  rank->path_len = out->value.size();
  return true;
}

bool HttpMatch(const Doc& doc, const YAML::Node& n, std::string_view field, CompiledMatch* out,
               Sink& sink) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map; rule dropped", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"path", "headers", "queryParams", "method"}, sink);
  RouteMatch& m = out->match;
  if (!PathMatch(doc, Child(n, "path"), Field(field, "path"), &m.path, &out->rank, sink)) {
    return false;
  }
  if (!HeaderMatches(doc, Child(n, "headers"), Field(field, "headers"), &m.headers, sink) ||
      !QueryMatches(doc, Child(n, "queryParams"), Field(field, "queryParams"), &m.query, sink)) {
    return false;
  }
  if (Present(Child(n, "method"))) {
    const auto method = Scalar(doc, Child(n, "method"), Field(field, "method"), sink);
    if (!method) return false;
    if (std::find(std::begin(kMethods), std::end(kMethods), *method) == std::end(kMethods)) {
      sink.Add(doc, Child(n, "method"),
               fmt::format("{}.method: '{}' is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, "
                           "OPTIONS, TRACE, PATCH; rule dropped",
                           field, *method));
      return false;
    }
    m.method = StringMatcher{StringMatcher::Kind::kExact, *method, nullptr, false};
  }
  out->rank.method = m.method.has_value();
  out->rank.headers = m.headers.size();
  out->rank.query = m.query.size();
  return true;
}

// The gateway-api CEL rules for Exact service / method names.
bool ValidGrpcService(std::string_view s) {
  if (!s.empty() && s[0] == '.') s.remove_prefix(1);
  bool start = true;
  for (char c : s) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (c == '.') {
      if (start) return false;
      start = true;
    } else if (alpha || (digit && !start)) {
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

bool ValidGrpcMethod(std::string_view s) {
  return !s.empty() && s.find('.') == std::string_view::npos && ValidGrpcService(s);
}

// GRPCRoute method → a path condition on "/service/method".
bool GrpcMethod(const Doc& doc, const YAML::Node& n, std::string_view field, PathMatcher* out,
                RouteRank* rank, Sink& sink) {
  ReportUnknownKeys(doc, n, field, {"type", "service", "method"}, sink);
  const auto type = OptScalar(doc, Child(n, "type"), Field(field, "type"), "Exact", sink);
  const auto service = OptScalar(doc, Child(n, "service"), Field(field, "service"), "", sink);
  const auto method = OptScalar(doc, Child(n, "method"), Field(field, "method"), "", sink);
  if (!type || !service || !method) return false;
  if (service->empty() && method->empty()) {
    sink.Add(doc, n, fmt::format("{}: one or both of service and method are required; rule dropped",
                                 field));
    return false;
  }
  rank->grpc_service = service->size();
  rank->grpc_method = method->size();
  if (*type == "Exact") {
    if ((!service->empty() && !ValidGrpcService(*service)) ||
        (!method->empty() && !ValidGrpcMethod(*method))) {
      sink.Add(doc, n,
               fmt::format("{}: '{}'/'{}' is not a valid gRPC service/method name; rule dropped",
                           field, *service, *method));
      return false;
    }
    if (method->empty()) {  // every method of the service
      out->kind = PathMatcher::Kind::kPrefix;
      out->value = fmt::format("/{}/", *service);
    } else if (service->empty()) {  // this method of any service
      out->kind = PathMatcher::Kind::kRegex;
      out->value = fmt::format("/[^/]+/{}", RE2::QuoteMeta(*method));
    } else {
      out->kind = PathMatcher::Kind::kExact;
      out->value = fmt::format("/{}/{}", *service, *method);
    }
  } else if (*type == "RegularExpression") {
    out->kind = PathMatcher::Kind::kRegex;
    out->value = fmt::format("/(?:{})/(?:{})", service->empty() ? "[^/]+" : *service,
                             method->empty() ? "[^/]+" : *method);
  } else {
    sink.Add(doc, Child(n, "type"),
             fmt::format("{}.type: '{}' is not Exact or RegularExpression; rule dropped", field,
                         *type));
    return false;
  }
  if (out->kind == PathMatcher::Kind::kRegex) {
    out->regex = Regex(doc, n, field, out->value, sink);
    return out->regex != nullptr;
  }
  return true;
}

bool GrpcMatch(const Doc& doc, const YAML::Node& n, std::string_view field, CompiledMatch* out,
               Sink& sink) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map; rule dropped", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"method", "headers"}, sink);
  RouteMatch& m = out->match;
  if (Present(Child(n, "method")) &&
      !GrpcMethod(doc, Child(n, "method"), Field(field, "method"), &m.path, &out->rank, sink)) {
    return false;
  }
  if (!HeaderMatches(doc, Child(n, "headers"), Field(field, "headers"), &m.headers, sink)) {
    return false;
  }
  out->rank.headers = m.headers.size();
  return true;
}

template <typename Fn>
bool CompileMatches(const Doc& doc, const YAML::Node& rule, std::string_view field,
                    std::vector<CompiledMatch>* out, Sink& sink, Fn one, bool http) {
  const YAML::Node list = Child(rule, "matches");
  const std::string f = Field(field, "matches");
  if (!Present(list) || (list.IsSequence() && list.size() == 0)) {
    // HTTPRoute: the default match is PathPrefix "/"; GRPCRoute: every request.
    CompiledMatch m;
    if (http) {
      m.match.path = PathMatcher{PathMatcher::Kind::kPathPrefix, "/", nullptr, false};
      m.rank.path_kind = 2;
      m.rank.path_len = 1;
    }
    out->push_back(std::move(m));
    return true;
  }
  if (!list.IsSequence()) {
    sink.Add(doc, list, fmt::format("{}: expected a list; rule dropped", f));
    return false;
  }
  for (size_t j = 0; j < list.size(); ++j) {
    CompiledMatch m;
    if (!one(doc, list[j], Field(f, j), &m, sink)) return false;
    m.rank.match = j;
    out->push_back(std::move(m));
  }
  return true;
}

}  // namespace

bool CompileHttpMatches(const Doc& doc, const YAML::Node& rule, std::string_view field,
                        std::vector<CompiledMatch>* out, Sink& sink) {
  return CompileMatches(doc, rule, field, out, sink, HttpMatch, true);
}

bool CompileGrpcMatches(const Doc& doc, const YAML::Node& rule, std::string_view field,
                        std::vector<CompiledMatch>* out, Sink& sink) {
  return CompileMatches(doc, rule, field, out, sink, GrpcMatch, false);
}

}  // namespace ambit::waypoint::route::internal
