#include <doctest/doctest.h>

#include <cstring>

#include "common/net/address.h"

namespace ambit::net {

TEST_CASE("IpAddress parses and formats v4 and v6") {
  auto a = IpAddress::Parse("10.44.2.7");
  REQUIRE(a.ok());
  CHECK(a->is_v4());
  CHECK(a->v4_host_order() == 0x0a2c0207u);
  CHECK(a->ToString() == "10.44.2.7");

  auto b = IpAddress::Parse("fd00::1");
  REQUIRE(b.ok());
  CHECK(b->is_v6());
  CHECK(b->ToString() == "fd00::1");
  CHECK(IpAddress::Parse("::1")->IsLoopback());
  // IPv4 is formatted by hand: every octet width, round trip through Parse.
  for (const char* text : {"0.0.0.0", "255.255.255.255", "1.20.100.9", "10.0.199.250",
                           "99.100.101.109"}) {
    CHECK(IpAddress::Parse(text)->ToString() == text);
  }
  for (uint32_t v : {0u, 0x01020304u, 0x0a00ff64u, 0xc0a80001u, 0xffffff00u}) {
    CHECK(IpAddress::Parse(IpAddress::V4(v).ToString())->v4_host_order() == v);
  }
  CHECK(IpAddress::Parse("127.3.0.1")->IsLoopback());
  CHECK(IpAddress::Parse("0.0.0.0")->IsUnspecified());
  CHECK(IpAddress::Parse("::")->IsUnspecified());
}

TEST_CASE("IPv4-mapped IPv6 is canonicalised to IPv4") {
  auto m = IpAddress::Parse("::ffff:10.0.0.1");
  REQUIRE(m.ok());
  CHECK(m->is_v4());
  CHECK(*m == *IpAddress::Parse("10.0.0.1"));
  CHECK(m->ToString() == "10.0.0.1");
  in6_addr in6 = m->ToIn6Addr();
  CHECK(in6.s6_addr[10] == 0xff);
  CHECK(in6.s6_addr[15] == 1);
}

TEST_CASE("IpAddress rejects garbage with a clear error") {
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "hello", "1.2.3.4:80", "::g",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    auto r = IpAddress::Parse(bad);
    CHECK_FALSE(r.ok());
    CHECK(std::string(r.status().message()).find("not an IP address") != std::string::npos);
  }
}

TEST_CASE("SocketAddress parse/format round trip") {
  auto a = SocketAddress::Parse("1.2.3.4:80");
  REQUIRE(a.ok());
  CHECK(a->port() == 80);
  CHECK(a->ToString() == "1.2.3.4:80");
  auto b = SocketAddress::Parse("[::1]:15008");
  REQUIRE(b.ok());
  CHECK(b->ip().is_v6());
  CHECK(b->port() == 15008);
  CHECK(b->ToString() == "[::1]:15008");
  auto c = SocketAddress::Parse("[::ffff:1.2.3.4]:9");
  REQUIRE(c.ok());
  CHECK(c->ToString() == "1.2.3.4:9");
  for (const char* bad : {"1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "::1:80",
                          "[::1]80", "[1.2.3.4]:80", "[::1]:", "1.2.3.4:8x"}) {
    CHECK_MESSAGE(!SocketAddress::Parse(bad).ok(), bad);
  }
  CHECK(std::string(SocketAddress::Parse("1.2.3.4:99999").status().message())
            .find("bad port") != std::string::npos);
}

TEST_CASE("SocketAddress to/from sockaddr_storage") {
  sockaddr_storage ss;
  auto a = *SocketAddress::Parse("10.44.1.2:8080");
  socklen_t len = a.ToSockaddr(&ss);
  CHECK(len == sizeof(sockaddr_in));
  CHECK(ss.ss_family == AF_INET);
  CHECK(*SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len) == a);

  len = a.ToSockaddrV6(&ss);
  CHECK(ss.ss_family == AF_INET6);
  auto back = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  REQUIRE(back.ok());
  CHECK(*back == a);  // mapped canonicalised back to v4

  auto v6 = *SocketAddress::Parse("[fd00::5]:443");
  len = v6.ToSockaddr(&ss);
  CHECK(len == sizeof(sockaddr_in6));
  CHECK(*SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len) == v6);

  sockaddr_storage un{};
  un.ss_family = AF_UNIX;
  CHECK_FALSE(SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&un), sizeof(un)).ok());
  CHECK_FALSE(SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), 4).ok());
}

TEST_CASE("Cidr contains and masks") {
  auto c = Cidr::Parse("10.44.1.77/24");
  REQUIRE(c.ok());
  CHECK(c->ToString() == "10.44.1.0/24");
  CHECK(c->Contains(*IpAddress::Parse("10.44.1.200")));
  CHECK_FALSE(c->Contains(*IpAddress::Parse("10.44.2.1")));
  CHECK_FALSE(c->Contains(*IpAddress::Parse("fd00::1")));
  CHECK(Cidr::Parse("0.0.0.0/0")->Contains(*IpAddress::Parse("8.8.8.8")));
  CHECK(Cidr::Parse("1.2.3.4")->prefix_len() == 32);
  auto v6 = Cidr::Parse("fd00:1::/32");
  REQUIRE(v6.ok());
  CHECK(v6->Contains(*IpAddress::Parse("fd00:1:ffff::9")));
  CHECK_FALSE(v6->Contains(*IpAddress::Parse("fd00:2::9")));
  CHECK(Cidr::Parse("10.0.0.0/12")->Contains(*IpAddress::Parse("10.15.255.255")));
  CHECK_FALSE(Cidr::Parse("10.0.0.0/12")->Contains(*IpAddress::Parse("10.16.0.0")));
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "fd00::/129", "x/8"}) {
    CHECK_MESSAGE(!Cidr::Parse(bad).ok(), bad);
  }
}

}  // namespace ambit::net
