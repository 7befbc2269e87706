#include <doctest/doctest.h>

#include <string>

#include "common/hbone/authority.h"

namespace ambit::hbone {
namespace {

using Kind = Authority::Kind;

TEST_CASE("authority: accepted forms round-trip") {
  struct Case {
    const char* in;
    Kind kind;
    const char* host;
    uint16_t port;
    const char* out;
  };
  const Case cases[] = {
      {"10.0.0.1:80", Kind::kIpv4, "10.0.0.1", 80, "10.0.0.1:80"},
      {"255.255.255.255:65535", Kind::kIpv4, "255.255.255.255", 65535, "255.255.255.255:65535"},
      {"[::1]:15008", Kind::kIpv6, "::1", 15008, "[::1]:15008"},
      {"[FD00:0:0::0001]:8080", Kind::kIpv6, "fd00::1", 8080, "[fd00::1]:8080"},
      {"[::ffff:10.1.2.3]:1", Kind::kIpv6, "::ffff:10.1.2.3", 1, "[::ffff:10.1.2.3]:1"},
      {"reviews.default.svc.cluster.local:9080", Kind::kHostname,
       "reviews.default.svc.cluster.local", 9080, "reviews.default.svc.cluster.local:9080"},
      {"a:1", Kind::kHostname, "a", 1, "a:1"},
      {"my-svc.ns:443", Kind::kHostname, "my-svc.ns", 443, "my-svc.ns:443"},
      {"host.example.:80", Kind::kHostname, "host.example.", 80, "host.example.:80"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    auto a = ParseAuthority(c.in);
    REQUIRE(a.ok());
    CHECK(a->kind == c.kind);
    CHECK(a->host == c.host);
    CHECK(a->port == c.port);
    CHECK(a->ToString() == c.out);
    CHECK(a->IsIp() == (c.kind != Kind::kHostname));
  }
}

TEST_CASE("authority: rejected forms say why") {
  struct Case {
    std::string in;
    const char* why;
  };
  const Case cases[] = {
      {"", "empty"},
      {"10.0.0.1", "missing ':port'"},
      {"10.0.0.1:", "port must be"},
      {"10.0.0.1:0", "1..65535"},
      {"10.0.0.1:65536", "1..65535"},
      {"10.0.0.1:123456", "1..65535"},
      {"10.0.0.1:+80", "decimal digits"},
      {"10.0.0.1:8a", "decimal digits"},
      {"::1:80", "[addr]:port"},
      {"[::1]", "':port' after ']'"},
      {"[::1:80", "missing ']'"},
      {"[10.0.0.1]:80", "IPv6 address inside []"},
      {"[fe80::1%eth0]:80", "IPv6 address inside []"},
      {"[::1]80", "':port' after ']'"},
      {"999.1.1.1:80", "neither an IPv4"},
      {"1.2.3:80", "neither an IPv4"},
      {"01.2.3.4:80", "neither an IPv4"},
      {"under_score.svc:80", "neither an IPv4"},
      {"-bad.svc:80", "neither an IPv4"},
      {"bad-.svc:80", "neither an IPv4"},
      {"a..b:80", "neither an IPv4"},
      {":80", "neither an IPv4"},
      {"host name:80", "neither an IPv4"},
      {"http://a:80", "without scheme or path"},
      {std::string(64, 'a') + ".svc:80", "neither an IPv4"},
      {std::string(300, 'a') + ":80", "longer than 260"},
      {std::string("a\0b:80", 6), "neither an IPv4"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    auto a = ParseAuthority(c.in);
    REQUIRE_FALSE(a.ok());
    CHECK(a.status().code() == absl::StatusCode::kInvalidArgument);
    std::string msg(a.status().message());
    CHECK(msg.find(c.why) != std::string::npos);
    CHECK(msg.find("invalid HBONE authority") != std::string::npos);
  }
}

TEST_CASE("authority from IP and port") {
  CHECK(AuthorityFromIp("10.1.2.3", 80)->ToString() == "10.1.2.3:80");
  CHECK(AuthorityFromIp("fd00::2", 80)->ToString() == "[fd00::2]:80");
  CHECK_FALSE(AuthorityFromIp("example.com", 80).ok());
  CHECK_FALSE(AuthorityFromIp("10.1.2.3", 0).ok());
  CHECK(IsValidHostname(std::string(63, 'x') + ".y"));
  CHECK_FALSE(IsValidHostname(std::string(254, 'x')));
}

}  // namespace
}  // namespace ambit::hbone
