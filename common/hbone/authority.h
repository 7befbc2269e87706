// HBONE CONNECT target (":authority"): "IPv4:port", "[IPv6]:port" or
// "hostname:port" (ISTIO-COMPAT §2.3). Anything else is rejected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace ambit::hbone {

struct Authority {
  enum class Kind : uint8_t { kIpv4, kIpv6, kHostname };

  Kind kind = Kind::kIpv4;
  // IP literal in canonical text form (no brackets) or the hostname as sent.
  std::string host;
  uint16_t port = 0;

  bool IsIp() const { return kind != Kind::kHostname; }
  // "10.0.0.1:80", "[fd00::1]:80", "svc.ns.svc.cluster.local:80".
  std::string ToString() const;
  bool operator==(const Authority&) const = default;
};

// Parses an authority; the error says what is wrong with it.
StatusOr<Authority> ParseAuthority(std::string_view text);
// Builds an authority from an IP literal (v4 or v6, no brackets) and port.
StatusOr<Authority> AuthorityFromIp(std::string_view ip, uint16_t port);

// Validators shared with the other HBONE header parsers.
bool IsValidHostname(std::string_view host);
StatusOr<uint16_t> ParsePort(std::string_view text);

}  // namespace ambit::hbone
