// Path rewrites and redirect Locations (WAYPOINT.md §5). Pure string work on
// the request's path and authority, safe on any worker. No input makes it
// fail: a path that does not carry the matched prefix or a regex that did not
// compile leaves the path as is, a Host port that is not a number is dropped.
#include "waypoint/route/rewrite.h"

#include <charconv>
#include <optional>

namespace ambit::waypoint::route {
namespace {

// The path split at its query: rewrites touch `path` only, `query` ("?x=1"
// or "") is put back unchanged.
struct SplitPath {
  std::string_view path, query;
};

SplitPath Split(std::string_view target) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q)};
}

// (Plain std::string_view work: Debian's absl::string_view is its own type.)
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool StartsWith(std::string_view s, std::string_view prefix, bool ignore_case) {
  if (!ignore_case) return s.starts_with(prefix);
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

std::string Concat(std::string_view a, std::string_view b) {
  std::string out;
  out.reserve(a.size() + b.size());
  out.append(a).append(b);
  return out;
}

// How many leading bytes of `path` the block's path condition matched, as
// Envoy counts them for prefix_rewrite: the prefix for prefix matches, the
// whole path for exact and regex ones, "/" when the block had no path
// condition (Istio then matches prefix "/"). nullopt when `path` does not
// start with the prefix (the caller passed a block that did not match).
std::optional<size_t> MatchedLength(const PathMatcher* m, std::string_view path) {
  if (m == nullptr || m->kind == PathMatcher::Kind::kAny) {
    if (!path.starts_with('/')) return std::nullopt;
    return 1;
  }
  switch (m->kind) {
    case PathMatcher::Kind::kExact:
    case PathMatcher::Kind::kRegex:
      return path.size();
    case PathMatcher::Kind::kPrefix:
    case PathMatcher::Kind::kPathPrefix:
      if (!StartsWith(path, m->value, m->ignore_case)) return std::nullopt;
      return m->value.size();
    case PathMatcher::Kind::kAny:
      break;
  }
  return std::nullopt;
}

std::string_view StripTrailingSlash(std::string_view s) {
  if (s.ends_with('/')) s.remove_suffix(1);
  return s;
}

// Gateway API ReplacePrefixMatch. The prefix is compared segment-wise with
// its trailing '/' ignored, the replacement's trailing '/' is dropped too, so
// that the remainder (which starts with '/' or is empty) joins it without
// ever producing "//"; an empty result is "/". This reproduces every row of
// the table in HTTPPathModifier.ReplacePrefixMatch (httproute_types.go).
std::optional<std::string> ReplacePrefixMatch(const PathMatcher* m, std::string_view path,
                                              std::string_view replacement) {
  std::string_view prefix;  // empty: the root, everything is the remainder
  bool ignore_case = false;
  if (m != nullptr) {
    switch (m->kind) {
      case PathMatcher::Kind::kAny:
        break;
      case PathMatcher::Kind::kExact:
      case PathMatcher::Kind::kRegex:
        prefix = path;  // the whole path matched
        break;
      case PathMatcher::Kind::kPrefix:
      case PathMatcher::Kind::kPathPrefix:
        prefix = StripTrailingSlash(m->value);
        ignore_case = m->ignore_case;
        break;
    }
  }
  if (!StartsWith(path, prefix, ignore_case)) return std::nullopt;
  std::string_view rest = path.substr(prefix.size());
  if (!rest.empty() && rest.front() != '/') return std::nullopt;  // `/foo` vs `/foobar`
  std::string out = Concat(StripTrailingSlash(replacement), rest);
  if (out.empty()) out = "/";
  return out;
}

// The rewritten path without its query; nullopt leaves the path unchanged.
std::optional<std::string> RewriteBare(const PathRewrite& rw, const PathMatcher* matched,
                                       std::string_view path) {
  switch (rw.kind) {
    case PathRewrite::Kind::kNone:
      return std::nullopt;
    case PathRewrite::Kind::kFull:
      return rw.value;
    case PathRewrite::Kind::kPrefix: {
      const std::optional<size_t> n = MatchedLength(matched, path);
      if (!n) return std::nullopt;
      return Concat(rw.value, path.substr(*n));
    }
    case PathRewrite::Kind::kReplacePrefixMatch:
      return ReplacePrefixMatch(matched, path, rw.value);
    case PathRewrite::Kind::kRegex: {
      if (rw.regex == nullptr || !rw.regex->ok()) return std::nullopt;
      std::string out(path);
      RE2::GlobalReplace(&out, *rw.regex, rw.value);
      return out;
    }
  }
  return std::nullopt;
}

// A Host / :authority split into host and port. An IPv6 literal keeps its
// brackets in `host`; an unbracketed address with several ':' is taken as a
// host without port (and bracketed when written). A port that is not a
// number in 1..65535 is dropped rather than echoed into a Location.
struct HostPort {
  std::string_view host;
  std::optional<uint16_t> port;
};

HostPort SplitAuthority(std::string_view a) {
  size_t colon = std::string_view::npos;
  if (a.starts_with('[')) {
    const size_t close = a.find(']');
    if (close != std::string_view::npos && close + 1 < a.size() && a[close + 1] == ':') {
      colon = close + 1;
    }
  } else if (a.find(':') == a.rfind(':')) {
    colon = a.find(':');
  }
  if (colon == std::string_view::npos) return {a, std::nullopt};
  HostPort out{a.substr(0, colon), std::nullopt};
  const std::string_view digits = a.substr(colon + 1);
  uint32_t port = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec == std::errc() && end == digits.data() + digits.size() && port >= 1 && port <= 65535) {
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

std::optional<uint16_t> WellKnownPort(std::string_view scheme) {
  if (EqualsIgnoreCase(scheme, "http")) return 80;
  if (EqualsIgnoreCase(scheme, "https")) return 443;
  return std::nullopt;
}

// The Location's port before the 80/443 omission (rewrite.h states the rules).
std::optional<uint16_t> RedirectPort(const Redirect& r, std::string_view request_scheme,
                                     const HostPort& request, const HostPort& target,
                                     uint16_t listener_port) {
  if (r.port) return r.port;
  if (r.authority && target.port) return target.port;  // authority given as host:port
  if (r.gateway_port_rules) {
    if (r.scheme) {
      if (auto p = WellKnownPort(*r.scheme)) return p;
    }
    if (listener_port == 0) return std::nullopt;  // unknown: never ":0"
    return listener_port;
  }
  // Envoy: a new host carries no port; a kept host keeps the request's,
  // except the old scheme's well-known port when the scheme changes
  // (http://h:80 redirected to https becomes https://h, not https://h:80).
  if (r.authority || !request.port) return std::nullopt;
  if (r.scheme && !EqualsIgnoreCase(*r.scheme, request_scheme) &&
      WellKnownPort(request_scheme) == request.port) {
    return std::nullopt;
  }
  return request.port;
}

void AppendHost(std::string* out, std::string_view host) {
  const bool bare_ipv6 = !host.starts_with('[') && host.find(':') != std::string_view::npos;
  if (bare_ipv6) out->push_back('[');
  out->append(host);
  if (bare_ipv6) out->push_back(']');
}

}  // namespace

std::string RewritePath(const PathRewrite& rw, const PathMatcher* matched, std::string_view path) {
  const SplitPath sp = Split(path);
  std::optional<std::string> bare = RewriteBare(rw, matched, sp.path);
  if (!bare) return std::string(path);
  if (bare->empty()) *bare = "/";  // a request-target is never empty
  bare->append(sp.query);
  return *std::move(bare);
}

std::string RedirectLocation(const Redirect& r, const PathMatcher* matched,
                             std::string_view scheme, std::string_view authority,
                             std::string_view path, uint16_t listener_port) {
  // Envoy path_redirect: a query written in the redirect path replaces the
  // request's; otherwise the request's query is kept.
  std::string location_path;
  if (r.path.kind == PathRewrite::Kind::kFull && r.path.value.find('?') != std::string::npos) {
    location_path = r.path.value;
  } else {
    location_path = RewritePath(r.path, matched, path);
  }
  // A rewrite value without a leading '/' would fuse with the host.
  if (!location_path.starts_with('/')) location_path.insert(0, "/");

  const HostPort request = SplitAuthority(authority);
  const HostPort target = r.authority ? SplitAuthority(*r.authority) : request;
  // Without any host (an HTTP/1.0 request with no Host) only a relative
  // Location can be written.
  if (target.host.empty()) return location_path;

  std::string out_scheme(r.scheme ? std::string_view(*r.scheme) : scheme);
  for (char& c : out_scheme) c = Lower(c);
  if (out_scheme.empty()) out_scheme = "http";
  std::string out = out_scheme + "://";
  AppendHost(&out, target.host);
  const std::optional<uint16_t> port = RedirectPort(r, scheme, request, target, listener_port);
  if (port && port != WellKnownPort(out_scheme)) out.append(":").append(std::to_string(*port));
  out.append(location_path);
  return out;
}

}  // namespace ambit::waypoint::route
