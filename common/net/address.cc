#include "common/net/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "common/net/cat.h"

namespace ambit::net {
namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool IsMapped(const std::array<uint8_t, 16>& b) {
  return std::memcmp(b.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0;
}

StatusOr<uint16_t> ParsePort(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || value > 65535) {
    return absl::InvalidArgumentError(
        Cat("bad port in socket address '", whole, "': want 0..65535"));
  }
  return static_cast<uint16_t>(value);
}

}  // namespace

IpAddress IpAddress::V4(uint32_t host_order) {
  IpAddress a;
  a.family_ = Family::kV4;
  uint32_t n = htonl(host_order);
  std::memcpy(a.bytes_.data(), &n, 4);
  return a;
}

IpAddress IpAddress::V6(const std::array<uint8_t, 16>& bytes) {
  IpAddress a;
  if (IsMapped(bytes)) {
    a.family_ = Family::kV4;
    std::memcpy(a.bytes_.data(), bytes.data() + 12, 4);
    return a;
  }
  a.family_ = Family::kV6;
  a.bytes_ = bytes;
  return a;
}

IpAddress IpAddress::AnyV6() {
  IpAddress a;
  a.family_ = Family::kV6;
  return a;
}

IpAddress IpAddress::LoopbackV6() {
  IpAddress a;
  a.family_ = Family::kV6;
  a.bytes_[15] = 1;
  return a;
}

StatusOr<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.size() >= INET6_ADDRSTRLEN) {
    return absl::InvalidArgumentError(Cat("'", text, "' is not an IP address"));
  }
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) return V4(ntohl(v4.s_addr));
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), &v6, 16);
    return V6(b);
  }
  return absl::InvalidArgumentError(
      Cat("'", text, "' is not an IP address (want a.b.c.d or an IPv6 address)"));
}

bool IpAddress::IsLoopback() const {
  if (is_v4()) return bytes_[0] == 127;
  return *this == LoopbackV6();
}

bool IpAddress::IsUnspecified() const {
  for (size_t i = 0; i < (is_v4() ? 4u : 16u); ++i) {
    if (bytes_[i] != 0) return false;
  }
  return true;
}

uint32_t IpAddress::v4_host_order() const {
  uint32_t n = 0;
  std::memcpy(&n, bytes_.data(), 4);
  return ntohl(n);
}

in_addr IpAddress::ToInAddr() const {
  in_addr a{};
  std::memcpy(&a.s_addr, bytes_.data(), 4);
  return a;
}

in6_addr IpAddress::ToIn6Addr() const {
  in6_addr a{};
  if (is_v4()) {
    std::memcpy(a.s6_addr, kMappedPrefix.data(), 12);
    std::memcpy(a.s6_addr + 12, bytes_.data(), 4);
  } else {
    std::memcpy(a.s6_addr, bytes_.data(), 16);
  }
  return a;
}

namespace {
// One octet in decimal, no leading zeros.
char* AppendOctet(char* p, unsigned v) {
  if (v >= 100) {
    *p++ = static_cast<char>('0' + v / 100);
    v %= 100;
    *p++ = static_cast<char>('0' + v / 10);
  } else if (v >= 10) {
    *p++ = static_cast<char>('0' + v / 10);
  }
  *p++ = static_cast<char>('0' + v % 10);
  return p;
}
}  // namespace

std::string IpAddress::ToString() const {
  if (is_v4()) {
    // Every connection formats addresses (access log, CONNECT authority);
    // inet_ntop goes through sprintf, so dotted quads are written by hand.
    char buf[16];
    char* p = buf;
    for (size_t i = 0; i < 4; ++i) {
      if (i != 0) *p++ = '.';
      p = AppendOctet(p, bytes_[i]);
    }
    return std::string(buf, p);
  }
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, bytes_.data(), buf, sizeof(buf));
  return buf;
}

StatusOr<SocketAddress> SocketAddress::Parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(
          Cat("bad socket address '", text, "': want [v6addr]:port"));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    ASSIGN_OR_RETURN(IpAddress ip, IpAddress::Parse(host));
    if (host.find(':') == std::string_view::npos) {
      return absl::InvalidArgumentError(
          Cat("bad socket address '", text, "': brackets are for IPv6 only"));
    }
    ASSIGN_OR_RETURN(uint16_t p, ParsePort(port, text));
    return SocketAddress(ip, p);
  }
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || text.find(':') != colon) {
    return absl::InvalidArgumentError(
        Cat("bad socket address '", text, "': want a.b.c.d:port or [v6addr]:port"));
  }
  ASSIGN_OR_RETURN(IpAddress ip, IpAddress::Parse(text.substr(0, colon)));
  ASSIGN_OR_RETURN(uint16_t p, ParsePort(text.substr(colon + 1), text));
  return SocketAddress(ip, p);
}

StatusOr<SocketAddress> SocketAddress::FromSockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return absl::InvalidArgumentError("null sockaddr");
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in{};
    std::memcpy(&in, sa, sizeof(in));
    return SocketAddress(IpAddress::V4(ntohl(in.sin_addr.s_addr)), ntohs(in.sin_port));
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, sa, sizeof(in6));
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), in6.sin6_addr.s6_addr, 16);
    return SocketAddress(IpAddress::V6(b), ntohs(in6.sin6_port));
  }
  return absl::InvalidArgumentError(
      Cat("unsupported socket address family ", sa->sa_family, " (want IPv4/IPv6)"));
}

socklen_t SocketAddress::ToSockaddr(sockaddr_storage* out) const {
  std::memset(out, 0, sizeof(*out));
  if (ip_.is_v4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(out);
    in->sin_family = AF_INET;
    in->sin_port = htons(port_);
    in->sin_addr = ip_.ToInAddr();
    return sizeof(sockaddr_in);
  }
  return ToSockaddrV6(out);
}

socklen_t SocketAddress::ToSockaddrV6(sockaddr_storage* out) const {
  std::memset(out, 0, sizeof(*out));
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port_);
  in6->sin6_addr = ip_.ToIn6Addr();
  return sizeof(sockaddr_in6);
}

std::string SocketAddress::ToString() const {
  if (ip_.is_v6()) return Cat("[", ip_.ToString(), "]:", port_);
  return Cat(ip_.ToString(), ":", port_);
}

StatusOr<Cidr> Cidr::Make(IpAddress ip, int prefix_len) {
  int max = ip.is_v4() ? 32 : 128;
  if (prefix_len < 0 || prefix_len > max) {
    return absl::InvalidArgumentError(Cat("prefix length ", prefix_len, " out of range 0..",
                                                   max, " for ", ip.ToString()));
  }
  std::array<uint8_t, 16> b = ip.bytes();
  for (int i = 0; i < 16; ++i) {
    int bits = prefix_len - i * 8;
    if (bits >= 8) continue;
    b[static_cast<size_t>(i)] &= bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
  }
  Cidr c;
  if (ip.is_v4()) {
    uint32_t n = 0;
    std::memcpy(&n, b.data(), 4);
    c.ip_ = IpAddress::V4(ntohl(n));
  } else {
    c.ip_ = IpAddress::V6(b);
    // A v6 prefix of ::ffff:0:0/96-ish must stay v6: rebuild without mapping.
    if (c.ip_.is_v4()) {
      return absl::InvalidArgumentError(
          Cat("IPv4-mapped prefix '", ip.ToString(), "/", prefix_len,
                       "' is not supported: write the IPv4 prefix instead"));
    }
  }
  c.prefix_len_ = prefix_len;
  return c;
}

StatusOr<Cidr> Cidr::Parse(std::string_view text) {
  size_t slash = text.find('/');
  ASSIGN_OR_RETURN(IpAddress ip, IpAddress::Parse(text.substr(0, slash)));
  int len = ip.is_v4() ? 32 : 128;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), len);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size()) {
      return absl::InvalidArgumentError(Cat("bad prefix length in '", text, "'"));
    }
  }
  return Make(ip, len);
}

bool Cidr::Contains(const IpAddress& ip) const {
  if (ip.family() != ip_.family()) return false;
  auto masked = Make(ip, prefix_len_);
  return masked.ok() && masked->ip_ == ip_;
}

std::string Cidr::ToString() const { return Cat(ip_.ToString(), "/", prefix_len_); }

}  // namespace ambit::net
