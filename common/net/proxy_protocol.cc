#include "common/net/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "common/net/cat.h"

namespace ambit::net {
namespace {

constexpr uint8_t kVersion2 = 0x20;
constexpr uint8_t kCmdLocal = 0x0;
constexpr uint8_t kCmdProxy = 0x1;
constexpr uint8_t kFamUnspec = 0x0;
constexpr uint8_t kFamInet = 0x1;
constexpr uint8_t kFamInet6 = 0x2;
constexpr uint8_t kFamUnix = 0x3;
constexpr uint8_t kTransportStream = 0x1;
constexpr uint8_t kTransportDgram = 0x2;
constexpr size_t kInetSize = 12;    // 2 x 4-byte address, 2 x port
constexpr size_t kInet6Size = 36;   // 2 x 16-byte address, 2 x port
constexpr size_t kUnixSize = 216;   // 2 x 108-byte path
constexpr size_t kMaxBody = 0xffff;

void PutU16(std::string& out, size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

uint16_t GetU16(std::string_view d, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(d[at]) << 8) |
                               static_cast<uint8_t>(d[at + 1]));
}

void PutV6(std::string& out, const IpAddress& ip) {
  in6_addr a = ip.ToIn6Addr();  // v4 becomes ::ffff:a.b.c.d
  out.append(reinterpret_cast<const char*>(a.s6_addr), 16);
}

IpAddress GetV6(std::string_view d, size_t at) {
  std::array<uint8_t, 16> b{};
  std::memcpy(b.data(), d.data() + at, 16);
  return IpAddress::V6(b);  // ::ffff:a.b.c.d comes back as IPv4
}

Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(Cat("PROXY v2 header: ", what));
}

}  // namespace

std::optional<std::string_view> ProxyHeader::Tlv(uint8_t type) const {
  for (const ProxyTlv& t : tlvs) {
    if (t.type == type) return std::string_view(t.value);
  }
  return std::nullopt;
}

StatusOr<std::string> EncodeProxyV2(const ProxyHeader& h) {
  size_t body = 0;
  uint8_t fam = kFamUnspec << 4;
  bool v4 = h.source.ip().is_v4() && h.destination.ip().is_v4();
  if (!h.local) {
    fam = static_cast<uint8_t>(((v4 ? kFamInet : kFamInet6) << 4) | kTransportStream);
    body = v4 ? kInetSize : kInet6Size;
  }
  for (const ProxyTlv& t : h.tlvs) {
    if (t.value.size() > kMaxBody) {
      return Invalid(Cat("TLV 0x", fmt::format("{:02x}", t.type), " value is ", t.value.size(),
                         " bytes (at most 65535)"));
    }
    body += 3 + t.value.size();
  }
  if (body > kMaxBody) {
    return Invalid(Cat("addresses and TLVs take ", body, " bytes (at most 65535)"));
  }
  std::string out;
  out.reserve(kProxyV2FixedSize + body);
  out.append(kProxyV2Signature);
  out.push_back(static_cast<char>(kVersion2 | (h.local ? kCmdLocal : kCmdProxy)));
  out.push_back(static_cast<char>(fam));
  PutU16(out, body);
  if (!h.local) {
    if (v4) {
      out.append(reinterpret_cast<const char*>(h.source.ip().bytes().data()), 4);
      out.append(reinterpret_cast<const char*>(h.destination.ip().bytes().data()), 4);
    } else {
      PutV6(out, h.source.ip());
      PutV6(out, h.destination.ip());
    }
    PutU16(out, h.source.port());
    PutU16(out, h.destination.port());
  }
  for (const ProxyTlv& t : h.tlvs) {
    out.push_back(static_cast<char>(t.type));
    PutU16(out, t.value.size());
    out.append(t.value);
  }
  return out;
}

StatusOr<std::optional<ProxyDecoded>> DecodeProxyV2(std::string_view data) {
  size_t sig = std::min(data.size(), kProxyV2Signature.size());
  if (data.substr(0, sig) != kProxyV2Signature.substr(0, sig)) {
    return Invalid("bad signature (not a PROXY protocol v2 stream)");
  }
  if (data.size() < kProxyV2FixedSize) return std::optional<ProxyDecoded>();
  uint8_t ver_cmd = static_cast<uint8_t>(data[12]);
  uint8_t fam = static_cast<uint8_t>(data[13]);
  size_t len = GetU16(data, 14);
  if ((ver_cmd & 0xf0) != kVersion2) {
    return Invalid(Cat("version ", ver_cmd >> 4, " (want 2)"));
  }
  uint8_t cmd = ver_cmd & 0x0f;
  if (cmd != kCmdLocal && cmd != kCmdProxy) return Invalid(Cat("unknown command ", cmd));
  uint8_t family = fam >> 4;
  uint8_t transport = fam & 0x0f;
  if (family > kFamUnix) return Invalid(Cat("unknown address family ", family));
  if (transport > kTransportDgram) return Invalid(Cat("unknown transport ", transport));
  size_t addr_size = family == kFamInet    ? kInetSize
                     : family == kFamInet6 ? kInet6Size
                     : family == kFamUnix  ? kUnixSize
                                           : 0;
  if (len < addr_size) {
    return Invalid(Cat("length ", len, " is shorter than the ", addr_size, "-byte addresses"));
  }
  ProxyDecoded out;
  out.header.local = cmd == kCmdLocal;
  if (!out.header.local) {
    if (family != kFamInet && family != kFamInet6) {
      return Invalid(family == kFamUnix ? "UNIX-socket addresses are not supported"
                                        : "command PROXY with an unspecified address family");
    }
    if (transport != kTransportStream) return Invalid("only TCP (stream) is supported");
  }
  if (data.size() < kProxyV2FixedSize + len) return std::optional<ProxyDecoded>();
  std::string_view body = data.substr(kProxyV2FixedSize, len);
  if (!out.header.local) {
    IpAddress src, dst;
    size_t ports = 0;
    if (family == kFamInet) {
      uint32_t s = 0, d = 0;
      std::memcpy(&s, body.data(), 4);
      std::memcpy(&d, body.data() + 4, 4);
      src = IpAddress::V4(ntohl(s));
      dst = IpAddress::V4(ntohl(d));
      ports = 8;
    } else {
      src = GetV6(body, 0);
      dst = GetV6(body, 16);
      ports = 32;
    }
    out.header.source = SocketAddress(src, GetU16(body, ports));
    out.header.destination = SocketAddress(dst, GetU16(body, ports + 2));
  }
  for (size_t at = addr_size; at < body.size();) {
    if (body.size() - at < 3) {
      return Invalid(Cat("TLV header at offset ", at, " is cut short"));
    }
    uint8_t type = static_cast<uint8_t>(body[at]);
    size_t vlen = GetU16(body, at + 1);
    if (body.size() - at - 3 < vlen) {
      return Invalid(Cat("TLV 0x", fmt::format("{:02x}", type), " of ", vlen,
                         " bytes runs past the header"));
    }
    out.header.tlvs.push_back(ProxyTlv{type, std::string(body.substr(at + 3, vlen))});
    at += 3 + vlen;
  }
  out.size = kProxyV2FixedSize + len;
  return std::optional<ProxyDecoded>(std::move(out));
}

}  // namespace ambit::net
