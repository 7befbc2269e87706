// Path rewrites and redirect Locations (waypoint/route/rewrite.h, WAYPOINT.md
// §5): Gateway API's ReplacePrefixMatch table row by row, VirtualService's
// string prefix rewrite (`//baz`), RE2 group rewrites, and the Location's
// scheme / host / port / path under Gateway API and Envoy port rules.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "waypoint/route/rewrite.h"

using namespace ambit::waypoint::route;

namespace {

PathMatcher Path(PathMatcher::Kind kind, std::string value, bool ignore_case = false) {
  PathMatcher m;
  m.kind = kind;
  m.value = std::move(value);
  m.ignore_case = ignore_case;
  if (kind == PathMatcher::Kind::kRegex) m.regex = std::make_shared<RE2>(m.value);
  return m;
}
PathMatcher PathPrefix(std::string v) { return Path(PathMatcher::Kind::kPathPrefix, std::move(v)); }
PathMatcher Prefix(std::string v) { return Path(PathMatcher::Kind::kPrefix, std::move(v)); }

PathRewrite Rw(PathRewrite::Kind kind, std::string value) {
  PathRewrite rw;
  rw.kind = kind;
  rw.value = std::move(value);
  return rw;
}
PathRewrite RegexRw(const std::string& pattern, std::string value) {
  PathRewrite rw = Rw(PathRewrite::Kind::kRegex, std::move(value));
  rw.regex = std::make_shared<RE2>(pattern);
  return rw;
}

}  // namespace

TEST_CASE("ReplacePrefixMatch: every row of Gateway API's table, prefix as written and compiled") {
  // httproute_types.go, HTTPPathModifier.ReplacePrefixMatch.
  struct Row {
    const char *path, *prefix, *replace, *want;
  };
  const std::vector<Row> rows = {
      {"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
      {"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
      {"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
      {"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
      {"/foo", "/foo", "/xyz", "/xyz"},
      {"/foo/", "/foo", "/xyz", "/xyz/"},
      {"/foo/bar", "/foo", "", "/bar"},
      {"/foo/", "/foo", "", "/"},
      {"/foo", "/foo", "", "/"},
      {"/foo/", "/foo", "/", "/"},
      {"/foo", "/foo", "/", "/"},
      // WAYPOINT.md §5: never "//".
      {"/strip", "/strip", "/", "/"},
      {"/strip/three", "/strip", "/", "/three"},
      // Deeper prefixes and replacements keep segment boundaries.
      {"/a/b/c/d", "/a/b", "/x/y", "/x/y/c/d"},
      {"/a/b/", "/a/b", "/x", "/x/"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.path);
    CAPTURE(r.prefix);
    CAPTURE(r.replace);
    const PathRewrite rw = Rw(PathRewrite::Kind::kReplacePrefixMatch, r.replace);
    // As the spec writes it ("/foo/") and as the compiler stores it ("/foo").
    std::string compiled = r.prefix;
    if (compiled.size() > 1 && compiled.back() == '/') compiled.pop_back();
    const PathMatcher as_written = PathPrefix(r.prefix), as_compiled = PathPrefix(compiled);
    CHECK(RewritePath(rw, &as_written, r.path) == r.want);
    CHECK(RewritePath(rw, &as_compiled, r.path) == r.want);
    // The query rides along untouched.
    CHECK(RewritePath(rw, &as_compiled, std::string(r.path) + "?q=/foo/&x=1") ==
          std::string(r.want) + "?q=/foo/&x=1");
  }
}

TEST_CASE("ReplacePrefixMatch: root prefix, case, and a path that does not carry the prefix") {
  const PathRewrite rw = Rw(PathRewrite::Kind::kReplacePrefixMatch, "/xyz");
  const PathMatcher root = PathPrefix("/");
  CHECK(RewritePath(rw, &root, "/abc") == "/xyz/abc");
  CHECK(RewritePath(rw, &root, "/") == "/xyz/");
  CHECK(RewritePath(rw, nullptr, "/abc?a=b") == "/xyz/abc?a=b");

  const PathMatcher foo = PathPrefix("/foo");
  CHECK(RewritePath(rw, &foo, "/foobar") == "/foobar");  // not a segment of /foo: unchanged
  CHECK(RewritePath(rw, &foo, "/other/x") == "/other/x");

  const PathMatcher foo_ci = Path(PathMatcher::Kind::kPathPrefix, "/foo", /*ignore_case=*/true);
  CHECK(RewritePath(rw, &foo_ci, "/FOO/bar") == "/xyz/bar");
}

TEST_CASE("ReplaceFullPath: the path is replaced, the query kept") {
  const PathMatcher foo = PathPrefix("/foo");
  CHECK(RewritePath(Rw(PathRewrite::Kind::kFull, "/new"), &foo, "/foo/bar?x=1") == "/new?x=1");
  CHECK(RewritePath(Rw(PathRewrite::Kind::kFull, "/new/"), nullptr, "/anything") == "/new/");
  CHECK(RewritePath(Rw(PathRewrite::Kind::kFull, ""), nullptr, "/a?b") == "/?b");
  CHECK(RewritePath(Rw(PathRewrite::Kind::kNone, "/ignored"), &foo, "/foo/bar?x=1") ==
        "/foo/bar?x=1");
}

TEST_CASE("VirtualService rewrite.uri replaces the matched prefix as a plain string") {
  struct Row {
    const char* name;
    PathMatcher match;
    bool has_match;
    const char *rewrite, *path, *want;
  };
  const std::vector<Row> rows = {
      // WAYPOINT.md §5: users are told to match "/foo/" for this reason.
      {"prefix /foo + / keeps the slash", Prefix("/foo"), true, "/", "/foo/baz", "//baz"},
      {"prefix /foo/ + /", Prefix("/foo/"), true, "/", "/foo/baz", "/baz"},
      {"prefix is not segment-aware", Prefix("/api"), true, "/v2", "/apiv2/x", "/v2v2/x"},
      {"prefix with query", Prefix("/foo/"), true, "/bar/", "/foo/a?x=/foo/", "/bar/a?x=/foo/"},
      {"ignoreUriCase prefix", Path(PathMatcher::Kind::kPrefix, "/foo", true), true, "/x",
       "/FoO/bar", "/x/bar"},
      {"exact: the whole path", Path(PathMatcher::Kind::kExact, "/login"), true, "/signin",
       "/login?next=/a", "/signin?next=/a"},
      {"regex match: the whole path", Path(PathMatcher::Kind::kRegex, "/v[0-9]+/.*"), true,
       "/api", "/v1/users?id=3", "/api?id=3"},
      // No path condition: Istio matches prefix "/", so "/" is what is replaced.
      {"no path match, rewrite /v1/", PathMatcher{}, true, "/v1/", "/a/b?c", "/v1/a/b?c"},
      {"no path match, rewrite /v1", PathMatcher{}, true, "/v1", "/a/b", "/v1a/b"},
      {"null matcher is prefix /", PathMatcher{}, false, "/v1/", "/a", "/v1/a"},
      {"path without the prefix is unchanged", Prefix("/foo"), true, "/x", "/bar/foo", "/bar/foo"},
  };
  for (const Row& r : rows) {
    CAPTURE(r.name);
    const PathRewrite rw = Rw(PathRewrite::Kind::kPrefix, r.rewrite);
    CHECK(RewritePath(rw, r.has_match ? &r.match : nullptr, r.path) == r.want);
  }
}

TEST_CASE("uriRegexRewrite: RE2 groups over the path only, every occurrence") {
  struct Row {
    const char *pattern, *rewrite, *path, *want;
  };
  // Envoy's regex_rewrite examples (route_components.proto).
  const std::vector<Row> rows = {
      {"^/service/([^/]+)(/.*)$", "\\2/instance/\\1", "/service/foo/v1/api",
       "/v1/api/instance/foo"},
      {"^/service/([^/]+)(/.*)$", "\\2/instance/\\1", "/service/foo/v1/api?q=/service/x/y",
       "/v1/api/instance/foo?q=/service/x/y"},
      {"one", "two", "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/two/zzz"},
      {"^(.*?)one(.*)$", "\\1two\\2", "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/one/zzz"},
      {"(?i)/xxx/", "/yyy/", "/aaa/XxX/bbb", "/aaa/yyy/bbb"},
      {"^/nomatch$", "/x", "/other?a", "/other?a"},
      {"^/only$", "", "/only?a", "/?a"},  // an empty path is never sent
  };
  const PathMatcher any;
  for (const Row& r : rows) {
    CAPTURE(r.pattern);
    CAPTURE(r.path);
    CHECK(RewritePath(RegexRw(r.pattern, r.rewrite), &any, r.path) == r.want);
  }
  // A pattern that failed to compile (reported by the compiler) leaves the path alone.
  RE2::Options quiet;
  quiet.set_log_errors(false);
  PathRewrite broken = Rw(PathRewrite::Kind::kRegex, "/x");
  broken.regex = std::make_shared<RE2>("(", quiet);
  REQUIRE_FALSE(broken.regex->ok());
  CHECK(RewritePath(broken, &any, "/a/b?c") == "/a/b?c");
  PathRewrite no_regex = Rw(PathRewrite::Kind::kRegex, "/x");
  CHECK(RewritePath(no_regex, &any, "/a/b") == "/a/b");
}

namespace {

struct LocRow {
  const char* name;
  Redirect r;
  const char* scheme;     // the request's
  const char* authority;  // the request's Host / :authority
  const char* path;
  uint16_t listener_port;
  const char* want;
};

Redirect Envoy() { return Redirect{}; }
Redirect Gateway() {
  Redirect r;
  r.gateway_port_rules = true;
  r.status = 302;
  return r;
}
Redirect WithScheme(Redirect r, std::string s) {
  r.scheme = std::move(s);
  return r;
}
Redirect WithHost(Redirect r, std::string h) {
  r.authority = std::move(h);
  return r;
}
Redirect WithPort(Redirect r, uint16_t p) {
  r.port = p;
  return r;
}
Redirect WithPath(Redirect r, PathRewrite p) {
  r.path = std::move(p);
  return r;
}

void CheckRows(const std::vector<LocRow>& rows, const PathMatcher* matched) {
  for (const LocRow& row : rows) {
    CAPTURE(row.name);
    CHECK(RedirectLocation(row.r, matched, row.scheme, row.authority, row.path,
                           row.listener_port) == row.want);
  }
}

}  // namespace

TEST_CASE("redirect statuses are carried with the Location") {
  for (int status : {301, 302, 303, 307, 308}) {
    CAPTURE(status);
    Redirect r = WithPath(Gateway(), Rw(PathRewrite::Kind::kFull, "/moved"));
    r.status = status;
    const Redirect copy = r;
    CHECK(RedirectLocation(r, nullptr, "http", "reviews:9080", "/old?x=1", 9080) ==
          "http://reviews:9080/moved?x=1");
    CHECK(r.status == copy.status);
  }
  // VirtualService's default; Gateway's 302 is set by its compiler.
  CHECK(Redirect{}.status == 301);
}

TEST_CASE("redirect Location under Envoy's rules (VirtualService)") {
  const std::vector<LocRow> rows = {
      {"scheme only, no request port", WithScheme(Envoy(), "https"), "http", "reviews",
       "/p?x=1", 9080, "https://reviews/p?x=1"},
      {"scheme only keeps the request port", WithScheme(Envoy(), "https"), "http",
       "reviews:8080", "/p", 9080, "https://reviews:8080/p"},
      {"scheme change drops the old well-known port", WithScheme(Envoy(), "https"), "http",
       "reviews:80", "/p", 80, "https://reviews/p"},
      {"https to http drops :443", WithScheme(Envoy(), "http"), "https", "reviews:443", "/p",
       443, "http://reviews/p"},
      {"same scheme, :80 is not written", WithScheme(Envoy(), "http"), "http", "reviews:80",
       "/p", 80, "http://reviews/p"},
      {"scheme to http keeps :8080", WithScheme(Envoy(), "http"), "https", "reviews:8080", "/p",
       8080, "http://reviews:8080/p"},
      {"host only: the new host has no port", WithHost(Envoy(), "other.example"), "http",
       "reviews:8080", "/p?x=1", 8080, "http://other.example/p?x=1"},
      {"authority with a port", WithHost(Envoy(), "other.example:8443"), "http",
       "reviews:8080", "/p", 8080, "http://other.example:8443/p"},
      {"port beats the authority's port", WithPort(WithHost(Envoy(), "other:8443"), 9000),
       "http", "reviews", "/p", 8080, "http://other:9000/p"},
      {"port only replaces the request port", WithPort(Envoy(), 9090), "http", "reviews:8080",
       "/p", 8080, "http://reviews:9090/p"},
      {"port only, request without port", WithPort(Envoy(), 9090), "http", "reviews", "/p", 80,
       "http://reviews:9090/p"},
      {"port 80 with http is not written", WithPort(Envoy(), 80), "http", "reviews:8080", "/p",
       8080, "http://reviews/p"},
      {"port 443 with https is not written", WithPort(WithScheme(Envoy(), "https"), 443), "http",
       "reviews:8080", "/p", 8080, "https://reviews/p"},
      {"nothing set: the request's own URL", Envoy(), "http", "reviews:8080", "/p?x=1", 8080,
       "http://reviews:8080/p?x=1"},
      {"path full keeps the query", WithPath(Envoy(), Rw(PathRewrite::Kind::kFull, "/new")),
       "http", "reviews", "/old?x=1", 80, "http://reviews/new?x=1"},
      {"path full with its own query replaces the request's",
       WithPath(Envoy(), Rw(PathRewrite::Kind::kFull, "/new?y=2")), "http", "reviews",
       "/old?x=1", 80, "http://reviews/new?y=2"},
      {"everything at once",
       WithPath(WithPort(WithHost(WithScheme(Envoy(), "https"), "secure.example"), 8443),
                Rw(PathRewrite::Kind::kFull, "/login")),
       "http", "reviews:9080", "/signin?next=/a", 9080,
       "https://secure.example:8443/login?next=/a"},
      {"IPv6 host keeps brackets and port", WithScheme(Envoy(), "https"), "http",
       "[fd00::1]:8080", "/p", 8080, "https://[fd00::1]:8080/p"},
      {"IPv6 host, port replaced", WithPort(Envoy(), 9090), "http", "[fd00::1]:8080", "/p",
       8080, "http://[fd00::1]:9090/p"},
      {"IPv6 host without port", WithScheme(Envoy(), "https"), "http", "[fd00::1]", "/p", 80,
       "https://[fd00::1]/p"},
      {"IPv6 redirect host gets brackets", WithHost(Envoy(), "fd00::2"), "http",
       "[fd00::1]:8080", "/p", 8080, "http://[fd00::2]/p"},
      {"bad request port is dropped", WithScheme(Envoy(), "https"), "http", "reviews:x1",
       "/p", 80, "https://reviews/p"},
      {"scheme is written lower-case", WithScheme(Envoy(), "HTTPS"), "http", "reviews", "/p", 80,
       "https://reviews/p"},
      {"no Host: a relative Location", WithPath(Envoy(), Rw(PathRewrite::Kind::kFull, "/new")),
       "http", "", "/old?x=1", 80, "/new?x=1"},
  };
  CheckRows(rows, nullptr);

  // Envoy prefix_rewrite in a redirect: the matched prefix is swapped.
  const PathMatcher old = Prefix("/old/");
  CheckRows({{"prefix replace", WithPath(Envoy(), Rw(PathRewrite::Kind::kPrefix, "/new/")),
              "http", "reviews:9080", "/old/a?x=1", 9080, "http://reviews:9080/new/a?x=1"},
             {"regex replace", WithPath(Envoy(), RegexRw("^/old/(.*)$", "/v2/\\1")), "http",
              "reviews", "/old/a/b?x=1", 80, "http://reviews/v2/a/b?x=1"}},
            &old);
}

TEST_CASE("redirect Location under Gateway API's port rules") {
  const std::vector<LocRow> rows = {
      {"scheme https: well-known 443, not written", WithScheme(Gateway(), "https"), "http",
       "reviews:8080", "/p?x=1", 8080, "https://reviews/p?x=1"},
      {"scheme http: well-known 80, not the listener's 8080", WithScheme(Gateway(), "http"),
       "https", "reviews:8080", "/p", 8080, "http://reviews/p"},
      {"no scheme: the listener port", Gateway(), "http", "reviews", "/p", 8080,
       "http://reviews:8080/p"},
      {"no scheme, listener 80 is not written", Gateway(), "http", "reviews:80", "/p", 80,
       "http://reviews/p"},
      {"no scheme, https request on 443", Gateway(), "https", "reviews", "/p", 443,
       "https://reviews/p"},
      {"host only: the listener port", WithHost(Gateway(), "other.example"), "http",
       "reviews:9999", "/p", 8080, "http://other.example:8080/p"},
      {"host only, listener 80", WithHost(Gateway(), "other.example"), "http", "reviews:80",
       "/p", 80, "http://other.example/p"},
      {"port only", WithPort(Gateway(), 9090), "http", "reviews:8080", "/p", 8080,
       "http://reviews:9090/p"},
      {"port with scheme https", WithPort(WithScheme(Gateway(), "https"), 8443), "http",
       "reviews", "/p", 80, "https://reviews:8443/p"},
      {"port 443 with https is not written", WithPort(WithScheme(Gateway(), "https"), 443),
       "http", "reviews:8080", "/p", 8080, "https://reviews/p"},
      {"unknown listener port writes none", Gateway(), "http", "reviews:8080", "/p", 0,
       "http://reviews/p"},
      {"IPv6 request host, scheme https", WithScheme(Gateway(), "https"), "http",
       "[fd00::1]:8080", "/p", 8080, "https://[fd00::1]/p"},
      {"IPv6 request host, listener port", Gateway(), "http", "[fd00::1]:8080", "/p", 8080,
       "http://[fd00::1]:8080/p"},
      {"ReplaceFullPath", WithPath(Gateway(), Rw(PathRewrite::Kind::kFull, "/full")), "http",
       "reviews", "/old/a?x=1", 80, "http://reviews/full?x=1"},
  };
  CheckRows(rows, nullptr);

  const PathMatcher old = PathPrefix("/old");
  const auto replace = [](const char* v) { return Rw(PathRewrite::Kind::kReplacePrefixMatch, v); };
  CheckRows({{"ReplacePrefixMatch", WithPath(Gateway(), replace("/new")), "http", "reviews",
              "/old/a?x=1", 8080, "http://reviews:8080/new/a?x=1"},
             {"ReplacePrefixMatch to /", WithPath(Gateway(), replace("/")), "http", "reviews",
              "/old", 80, "http://reviews/"}},
            &old);
}
