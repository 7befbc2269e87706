// The pieces of a VirtualService http[] rule: match blocks, header edits,
// rewrite, redirect, direct response (compile_istio_internal.h).
#include <absl/strings/escaping.h>
#include <fmt/format.h>

#include <algorithm>

#include "common/base/ascii.h"
#include "waypoint/route/compile_istio_internal.h"

namespace ambit::waypoint::route::internal {

namespace {

// Istio StringMatch {exact|prefix|regex}; an empty map (or regex "*") is
// "present". `lower` lower-cases exact/prefix values (ignoreUriCase).
std::optional<StringMatcher> IstioStringMatch(const Doc& doc, const YAML::Node& n,
                                              std::string_view field, Sink& sink,
                                              bool allow_presence) {
  StringMatcher m;
  if (!Present(n) || (n.IsMap() && n.size() == 0)) {
    if (!allow_presence) {
      sink.Add(doc, n, fmt::format("{}: an empty match is not allowed here; block dropped", field));
      return std::nullopt;
    }
    m.kind = StringMatcher::Kind::kPresent;
    return m;
  }
  if (!n.IsMap() || n.size() != 1) {
    sink.Add(doc, n,
             fmt::format("{}: expected exactly one of exact, prefix, regex; block dropped", field));
    return std::nullopt;
  }
  const auto kv = *n.begin();
  const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
  auto value = Scalar(doc, kv.second, Field(field, key), sink);
  if (!value) return std::nullopt;
  if (key == "exact") {
    m.kind = StringMatcher::Kind::kExact;
  } else if (key == "prefix") {
    m.kind = StringMatcher::Kind::kPrefix;
  } else if (key == "regex") {
    if (*value == "*" && allow_presence) {
      m.kind = StringMatcher::Kind::kPresent;
      return m;
    }
    m.kind = StringMatcher::Kind::kRegex;
    m.regex = Regex(doc, kv.second, Field(field, key), *value, sink);
    if (m.regex == nullptr) return std::nullopt;
  } else {
    sink.Add(doc, kv.first,
             fmt::format("{}: unknown match type '{}' (exact, prefix, regex); block dropped",
                         Field(field, key), key));
    return std::nullopt;
  }
  m.value = *value;
  return m;
}

std::optional<LabelMap> StringMap(const Doc& doc, const YAML::Node& n, std::string_view field,
                                  Sink& sink) {
  LabelMap out;
  if (!Present(n)) return out;
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map", field));
    return std::nullopt;
  }
  for (const auto& kv : n) {
    if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
      sink.Add(doc, kv.first, fmt::format("{}: expected string keys and values", field));
      return std::nullopt;
    }
    out[kv.first.Scalar()] = kv.second.Scalar();
  }
  return out;
}

bool ValidHeaderName(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    const bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!tchar) return false;
  }
  return true;
}

}  // namespace

std::optional<RouteMatch> CompileIstioMatch(const Doc& doc, const YAML::Node& n,
                                            const std::string& field, Sink& sink,
                                            bool* mesh_applies) {
  *mesh_applies = true;
  RouteMatch m;
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map; block dropped", field));
    return std::nullopt;
  }
  ReportUnknownKeys(doc, n, field,
                    {"name", "uri", "method", "authority", "headers", "withoutHeaders", "port",
                     "sourceLabels", "sourceNamespace", "queryParams", "ignoreUriCase",
                     "gateways", "scheme", "statPrefix"},
                    sink, "unknown field; ignored");
  bool ignore_case = false;
  if (const YAML::Node ic = Child(n, "ignoreUriCase"); Present(ic)) {
    ignore_case = ic.IsScalar() && (ic.Scalar() == "true" || ic.Scalar() == "True");
  }
  if (const YAML::Node gw = Child(n, "gateways"); Present(gw)) {
    bool mesh = false;
    if (gw.IsSequence()) {
      for (const auto& g : gw) mesh = mesh || (g.IsScalar() && g.Scalar() == "mesh");
    }
    if (!mesh) {
      *mesh_applies = false;  // the block is for gateways only
      return std::nullopt;
    }
  }
  if (const YAML::Node uri = Child(n, "uri"); Present(uri)) {
    auto sm = IstioStringMatch(doc, uri, Field(field, "uri"), sink, false);
    if (!sm) return std::nullopt;
    switch (sm->kind) {
      case StringMatcher::Kind::kExact: m.path.kind = PathMatcher::Kind::kExact; break;
      case StringMatcher::Kind::kPrefix: m.path.kind = PathMatcher::Kind::kPrefix; break;
      default: m.path.kind = PathMatcher::Kind::kRegex; break;
    }
    m.path.value = sm->value;
    m.path.regex = sm->regex;
    // ignoreUriCase applies to exact and prefix only (a regex may use (?i)).
    m.path.ignore_case = ignore_case && m.path.kind != PathMatcher::Kind::kRegex;
    if (m.path.ignore_case) m.path.value = base::ToLower(m.path.value);
  }
  for (const char* key : {"method", "authority", "scheme"}) {
    const YAML::Node v = Child(n, key);
    if (!Present(v)) continue;
    auto sm = IstioStringMatch(doc, v, Field(field, key), sink, false);
    if (!sm) return std::nullopt;
    if (std::string_view(key) == "method") {
      m.method = std::move(*sm);
    } else if (std::string_view(key) == "authority") {
      m.authority = std::move(*sm);
    } else if (!sm->Matches("http")) {
      return std::nullopt;  // inside the mesh the scheme is http: the block never matches
    }
  }
  for (const char* key : {"headers", "withoutHeaders"}) {
    const YAML::Node hs = Child(n, key);
    if (!Present(hs)) continue;
    const std::string hf = Field(field, key);
    if (!hs.IsMap()) {
      sink.Add(doc, hs, fmt::format("{}: expected a map of header name to match", hf));
      return std::nullopt;
    }
    for (const auto& kv : hs) {
      const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "";
      if (!ValidHeaderName(name)) {
        sink.Add(doc, kv.first, fmt::format("{}: '{}' is not a header name; block dropped", hf,
                                            name));
        return std::nullopt;
      }
      auto sm = IstioStringMatch(doc, kv.second, Field(hf, name), sink, true);
      if (!sm) return std::nullopt;
      m.headers.push_back(HeaderMatcher{base::ToLower(name), std::move(*sm),
                                        std::string_view(key) == "withoutHeaders"});
    }
  }
  if (const YAML::Node qs = Child(n, "queryParams"); Present(qs)) {
    const std::string qf = Field(field, "queryParams");
    if (!qs.IsMap()) {
      sink.Add(doc, qs, fmt::format("{}: expected a map of parameter name to match", qf));
      return std::nullopt;
    }
    for (const auto& kv : qs) {
      const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "";
      auto sm = IstioStringMatch(doc, kv.second, Field(qf, name), sink, true);
      if (!sm) return std::nullopt;
      if (sm->kind == StringMatcher::Kind::kPrefix) {
        sink.Add(doc, kv.second, fmt::format("{}: prefix is not supported for query "
                                             "parameters (exact, regex); block dropped",
                                             Field(qf, name)));
        return std::nullopt;
      }
      m.query.push_back(QueryMatcher{name, std::move(*sm)});
    }
  }
  if (const YAML::Node p = Child(n, "port"); Present(p)) {
    auto port = Uint(doc, p, Field(field, "port"), 65535, sink);
    if (!port || *port == 0) return std::nullopt;
    m.port = static_cast<uint16_t>(*port);
  }
  if (auto labels = StringMap(doc, Child(n, "sourceLabels"), Field(field, "sourceLabels"), sink)) {
    m.source_labels = std::move(*labels);
  } else {
    return std::nullopt;
  }
  if (const YAML::Node sn = Child(n, "sourceNamespace"); Present(sn)) {
    auto v = Scalar(doc, sn, Field(field, "sourceNamespace"), sink);
    if (!v) return std::nullopt;
    m.source_namespace = *v;
  }
  return m;
}

bool CompileHeaderOps(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                      HeaderOps* out) {
  if (!Present(n)) return true;
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map (set, add, remove)", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"set", "add", "remove"}, sink, "unknown field; ignored");
  for (const char* op : {"set", "add"}) {
    auto map = StringMap(doc, Child(n, op), Field(field, op), sink);
    if (!map) return false;
    for (auto& [k, v] : *map) {
      if (!ValidHeaderName(k)) {
        sink.Add(doc, Child(n, op), fmt::format("{}: '{}' is not a header name; ignored",
                                                Field(field, op), k));
        continue;
      }
      (std::string_view(op) == "set" ? out->set : out->add).emplace_back(base::ToLower(k), v);
    }
  }
  if (const YAML::Node rm = Child(n, "remove"); Present(rm)) {
    if (!rm.IsSequence()) {
      sink.Add(doc, rm, fmt::format("{}: expected a list of header names", Field(field, "remove")));
      return false;
    }
    for (const auto& h : rm) {
      if (h.IsScalar()) out->remove.push_back(base::ToLower(h.Scalar()));
    }
  }
  return true;
}

bool CompileHeaders(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                    HeaderOps* request, HeaderOps* response) {
  if (!Present(n)) return true;
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map (request, response)", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"request", "response"}, sink, "unknown field; ignored");
  return CompileHeaderOps(doc, Child(n, "request"), Field(field, "request"), sink, request) &&
         CompileHeaderOps(doc, Child(n, "response"), Field(field, "response"), sink, response);
}

bool CompileRewrite(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                    Route* route) {
  if (!Present(n)) return true;
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"uri", "authority", "uriRegexRewrite"}, sink,
                    "unknown field; ignored");
  const YAML::Node uri = Child(n, "uri"), re = Child(n, "uriRegexRewrite");
  if (Present(uri) && Present(re)) {
    sink.Add(doc, re, fmt::format("{}: uri and uriRegexRewrite cannot both be set; rule "
                                  "dropped", field));
    return false;
  }
  if (Present(uri)) {
    auto v = Scalar(doc, uri, Field(field, "uri"), sink);
    if (!v) return false;
    route->rewrite.kind = PathRewrite::Kind::kPrefix;
    route->rewrite.value = *v;
  }
  if (Present(re)) {
    const std::string rf = Field(field, "uriRegexRewrite");
    auto pattern = Scalar(doc, Child(re, "match"), Field(rf, "match"), sink);
    auto with = Scalar(doc, Child(re, "rewrite"), Field(rf, "rewrite"), sink);
    if (!pattern || !with) return false;
    route->rewrite.kind = PathRewrite::Kind::kRegex;
    route->rewrite.regex = Regex(doc, Child(re, "match"), Field(rf, "match"), *pattern, sink);
    if (route->rewrite.regex == nullptr) return false;
    std::string error;
    if (!route->rewrite.regex->CheckRewriteString(*with, &error)) {
      sink.Add(doc, Child(re, "rewrite"),
               fmt::format("{}: invalid rewrite '{}': {}; rule dropped", Field(rf, "rewrite"),
                           *with, error));
      return false;
    }
    route->rewrite.value = *with;
  }
  if (const YAML::Node a = Child(n, "authority"); Present(a)) {
    auto v = Scalar(doc, a, Field(field, "authority"), sink);
    if (!v) return false;
    route->authority_rewrite = *v;
  }
  return true;
}

bool CompileRedirect(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                     Redirect* out) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field,
                    {"uri", "authority", "port", "derivePort", "scheme", "redirectCode"}, sink,
                    "unknown field; ignored");
  if (const YAML::Node u = Child(n, "uri"); Present(u)) {
    auto v = Scalar(doc, u, Field(field, "uri"), sink);
    if (!v) return false;
    out->path.kind = PathRewrite::Kind::kFull;
    out->path.value = *v;
  }
  if (const YAML::Node a = Child(n, "authority"); Present(a)) {
    auto v = Scalar(doc, a, Field(field, "authority"), sink);
    if (!v) return false;
    out->authority = *v;
  }
  if (const YAML::Node s = Child(n, "scheme"); Present(s)) {
    auto v = Scalar(doc, s, Field(field, "scheme"), sink);
    if (!v) return false;
    out->scheme = base::ToLower(*v);
  }
  if (const YAML::Node p = Child(n, "port"); Present(p)) {
    auto v = Uint(doc, p, Field(field, "port"), 65535, sink);
    if (!v || *v == 0) return false;
    out->port = static_cast<uint16_t>(*v);
  }
  if (const YAML::Node d = Child(n, "derivePort"); Present(d)) {
    // FROM_PROTOCOL_DEFAULT: the scheme's port; FROM_REQUEST_PORT: kept.
    if (d.IsScalar() && d.Scalar() == "FROM_PROTOCOL_DEFAULT") {
      out->gateway_port_rules = true;
    } else if (!d.IsScalar() || d.Scalar() != "FROM_REQUEST_PORT") {
      sink.Add(doc, d, fmt::format("{}: expected FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT",
                                   Field(field, "derivePort")));
      return false;
    }
  }
  out->status = 301;
  if (const YAML::Node c = Child(n, "redirectCode"); Present(c)) {
    auto v = Uint(doc, c, Field(field, "redirectCode"), 999, sink);
    if (!v) return false;
    if (*v != 301 && *v != 302 && *v != 303 && *v != 307 && *v != 308) {
      sink.Add(doc, c, fmt::format("{}: {} is not a redirect code (301, 302, 303, 307, 308); "
                                   "rule dropped", Field(field, "redirectCode"), *v));
      return false;
    }
    out->status = static_cast<int>(*v);
  }
  return true;
}

bool CompileDirectResponse(const Doc& doc, const YAML::Node& n, const std::string& field,
                           Sink& sink, DirectResponse* out) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"status", "body"}, sink, "unknown field; ignored");
  auto status = Uint(doc, Child(n, "status"), Field(field, "status"), 599, sink);
  if (!status || *status < 200) {
    if (status) sink.Add(doc, Child(n, "status"), fmt::format("{}: must be 200..599",
                                                              Field(field, "status")));
    return false;
  }
  out->status = static_cast<int>(*status);
  if (const YAML::Node b = Child(n, "body"); Present(b)) {
    const std::string bf = Field(field, "body");
    if (const YAML::Node s = Child(b, "string"); Present(s)) {
      auto v = Scalar(doc, s, Field(bf, "string"), sink);
      if (!v) return false;
      out->body = *v;
    } else if (const YAML::Node by = Child(b, "bytes"); Present(by)) {
      auto v = Scalar(doc, by, Field(bf, "bytes"), sink);
      if (!v) return false;
      std::string decoded;
      if (!absl::Base64Unescape(*v, &decoded)) {
        sink.Add(doc, by, fmt::format("{}: not valid base64; rule dropped", Field(bf, "bytes")));
        return false;
      }
      out->body = std::move(decoded);
    } else {
      sink.Add(doc, b, fmt::format("{}: expected string or bytes", bf));
      return false;
    }
    if (out->body.size() > kMaxDirectResponseBody) {
      sink.Add(doc, b, fmt::format("{}: larger than {} bytes; rule dropped", bf,
                                   kMaxDirectResponseBody));
      return false;
    }
  }
  return true;
}

}  // namespace ambit::waypoint::route::internal
