#include "common/hbone/authority.h"

#include <arpa/inet.h>

#include <string>

namespace ambit::hbone {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Canonical text of an IP literal of family `af`, or empty if invalid.
std::string CanonicalIp(int af, std::string_view ip) {
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN) return {};
  std::string z(ip);
  unsigned char buf[16];
  if (inet_pton(af, z.c_str(), buf) != 1) return {};
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(af, buf, text, sizeof(text)) == nullptr) return {};
  return text;
}

Status Bad(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError("invalid HBONE authority \"" +
                                    std::string(text.substr(0, 300)) + "\": " +
                                    std::string(why));
}

}  // namespace

bool IsValidHostname(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  if (host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return false;
  bool last_label_numeric = true;
  size_t start = 0;
  while (start <= host.size()) {
    size_t end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    std::string_view label = host.substr(start, end - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    last_label_numeric = true;
    for (char c : label) {
      if (!IsAlnum(c) && c != '-') return false;
      if (!IsDigit(c)) last_label_numeric = false;
    }
    start = end + 1;
  }
  // "1.2.3.999" is a broken IPv4 address, not a hostname.
  return !last_label_numeric;
}

StatusOr<uint16_t> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) {
    return absl::InvalidArgumentError("port must be 1..65535");
  }
  uint32_t v = 0;
  for (char c : text) {
    if (!IsDigit(c)) return absl::InvalidArgumentError("port must be decimal digits");
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return absl::InvalidArgumentError("port must be 1..65535");
  return static_cast<uint16_t>(v);
}

std::string Authority::ToString() const {
  std::string p = std::to_string(port);
  if (kind == Kind::kIpv6) return "[" + host + "]:" + p;
  return host + ":" + p;
}

StatusOr<Authority> AuthorityFromIp(std::string_view ip, uint16_t port) {
  if (port == 0) return absl::InvalidArgumentError("port must be 1..65535");
  Authority a;
  a.port = port;
  if (std::string v4 = CanonicalIp(AF_INET, ip); !v4.empty()) {
    a.kind = Authority::Kind::kIpv4;
    a.host = v4;
  } else if (std::string v6 = CanonicalIp(AF_INET6, ip); !v6.empty()) {
    a.kind = Authority::Kind::kIpv6;
    a.host = v6;
  } else {
    return absl::InvalidArgumentError("not an IP address: " + std::string(ip.substr(0, 64)));
  }
  return a;
}

StatusOr<Authority> ParseAuthority(std::string_view text) {
  if (text.empty()) return Bad(text, "empty");
  if (text.size() > 260) return Bad(text, "longer than 260 characters");
  if (text.find('/') != std::string_view::npos) {
    return Bad(text, "must be host:port, without scheme or path");
  }
  Authority a;
  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return Bad(text, "missing ']' after IPv6 address");
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return Bad(text, "expected ':port' after ']'");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    a.host = CanonicalIp(AF_INET6, host);
    if (a.host.empty()) return Bad(text, "not a valid IPv6 address inside []");
    a.kind = Authority::Kind::kIpv6;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Bad(text, "missing ':port'");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Bad(text, "IPv6 addresses must be written as [addr]:port");
    }
    if (std::string v4 = CanonicalIp(AF_INET, host); !v4.empty()) {
      a.kind = Authority::Kind::kIpv4;
      a.host = v4;
    } else if (IsValidHostname(host)) {
      a.kind = Authority::Kind::kHostname;
      a.host = std::string(host);
    } else {
      return Bad(text, "host is neither an IPv4 address nor a valid hostname "
                       "(letters, digits, '-', '.'; labels up to 63 characters)");
    }
  }
  auto p = ParsePort(port);
  if (!p.ok()) return Bad(text, std::string(p.status().message()));
  a.port = *p;
  return a;
}

}  // namespace ambit::hbone
