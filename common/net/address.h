// IP addresses, socket addresses (ip + port) and CIDR ranges.
// Value types; parsing never crashes on bad input, it returns a Status.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace ambit::net {

enum class Family : uint8_t { kV4, kV6 };

// An IPv4 or IPv6 address. IPv4-mapped IPv6 (::ffff:a.b.c.d) is always
// canonicalised to IPv4, so the same host compares equal however it arrived.
class IpAddress {
 public:
  IpAddress() = default;  // 0.0.0.0
  static IpAddress V4(uint32_t host_order);
  static IpAddress V6(const std::array<uint8_t, 16>& bytes);  // canonicalises
  static IpAddress AnyV4() { return IpAddress(); }
  static IpAddress AnyV6();
  static IpAddress LoopbackV4() { return V4(0x7f000001); }
  static IpAddress LoopbackV6();
  static StatusOr<IpAddress> Parse(std::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  bool is_v6() const { return family_ == Family::kV6; }
  bool IsLoopback() const;
  bool IsUnspecified() const;
  // Network-order bytes: 4 meaningful for v4, 16 for v6.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }
  uint32_t v4_host_order() const;  // only for v4
  in_addr ToInAddr() const;        // only for v4
  in6_addr ToIn6Addr() const;      // v4 becomes ::ffff:a.b.c.d
  std::string ToString() const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::kV4;
  std::array<uint8_t, 16> bytes_{};
};

// ip + port. Text form "1.2.3.4:80" or "[::1]:80".
class SocketAddress {
 public:
  SocketAddress() = default;
  SocketAddress(IpAddress ip, uint16_t port) : ip_(ip), port_(port) {}
  static StatusOr<SocketAddress> Parse(std::string_view text);
  // Accepts AF_INET and AF_INET6 (mapped v4 is canonicalised).
  static StatusOr<SocketAddress> FromSockaddr(const sockaddr* sa, socklen_t len);

  const IpAddress& ip() const { return ip_; }
  uint16_t port() const { return port_; }
  Family family() const { return ip_.family(); }
  // Native form for the address family; returns the length used.
  socklen_t ToSockaddr(sockaddr_storage* out) const;
  // Always AF_INET6 (v4 as mapped), for dual-stack sockets.
  socklen_t ToSockaddrV6(sockaddr_storage* out) const;
  std::string ToString() const;

  friend auto operator<=>(const SocketAddress&, const SocketAddress&) = default;

 private:
  IpAddress ip_;
  uint16_t port_ = 0;
};

// A prefix such as 10.44.0.0/16 or fd00::/8. The address is masked on parse.
class Cidr {
 public:
  Cidr() = default;
  static StatusOr<Cidr> Make(IpAddress ip, int prefix_len);
  // "10.0.0.0/8"; a bare address means a host prefix (/32 or /128).
  static StatusOr<Cidr> Parse(std::string_view text);

  const IpAddress& address() const { return ip_; }
  int prefix_len() const { return prefix_len_; }
  bool Contains(const IpAddress& ip) const;
  std::string ToString() const;

  friend auto operator<=>(const Cidr&, const Cidr&) = default;

 private:
  IpAddress ip_;
  int prefix_len_ = 0;
};

}  // namespace ambit::net
