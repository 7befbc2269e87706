// PROXY protocol version 2 (the binary form of the HAProxy PROXY protocol
// specification): a header written before the first byte of a TCP stream
// that carries the original source and destination, plus type-length-value
// extensions. The agent writes it toward a waypoint's application tunnel
// ("sandwich", ISTIO-COMPAT §2.7: TLV 0xD0 = source SPIFFE identity); a
// waypoint reads it. Pure functions: no sockets, no allocation beyond the
// returned values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/net/address.h"

namespace ambit::net {

// The 12-byte signature every v2 header starts with.
inline constexpr std::string_view kProxyV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
// Fixed part: signature, version/command, family/transport, 16-bit length.
inline constexpr size_t kProxyV2FixedSize = 16;
// Istio's TLV types (ISTIO-COMPAT §2.7). 0xD1 is defined, ztunnel never sends it.
inline constexpr uint8_t kProxyTlvPeerIdentity = 0xD0;
inline constexpr uint8_t kProxyTlvServiceHostname = 0xD1;

struct ProxyTlv {
  uint8_t type = 0;
  std::string value;
  friend bool operator==(const ProxyTlv&, const ProxyTlv&) = default;
};

// What a header says. `local`: command LOCAL (a health check from the
// proxy itself; addresses absent). Otherwise command PROXY over TCP.
struct ProxyHeader {
  bool local = false;
  SocketAddress source;
  SocketAddress destination;
  std::vector<ProxyTlv> tlvs;

  // The first TLV of `type`, if any.
  std::optional<std::string_view> Tlv(uint8_t type) const;
};

// Encodes `h` as command PROXY (or LOCAL), transport TCP. Address families:
// both IPv4 -> TCP over IPv4; otherwise TCP over IPv6 with IPv4 written as
// ::ffff:a.b.c.d. Errors (InvalidArgument) when the header would not fit
// the 16-bit length field.
StatusOr<std::string> EncodeProxyV2(const ProxyHeader& h);

struct ProxyDecoded {
  ProxyHeader header;
  size_t size = 0;  // bytes of `data` the header took; the payload follows
};

// Decodes a header at the start of `data`. std::nullopt: `data` is a proper
// prefix of a header (read more). Errors (InvalidArgument) name the problem:
// bad signature, version, command, family, transport, a length too short
// for the addresses, or a TLV that runs past the header. UNIX-socket and
// UDP headers are refused (a TCP relay has no use for them); an unknown
// family with command LOCAL is accepted.
StatusOr<std::optional<ProxyDecoded>> DecodeProxyV2(std::string_view data);

}  // namespace ambit::net
