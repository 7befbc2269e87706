// In-pod redirection rules of ISTIO-COMPAT §4.1, as data.
//
// BuildRules() describes every rule once (table, chain, matches, verdict);
// the iptables and nftables renderers turn the same list into
// `iptables-restore --noflush` or `nft -f` input, so both backends stay equal.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/net/address.h"

namespace ambit::capture {

enum class RedirectMode : uint8_t {
  kRedirect,  // current istio-cni: nat REDIRECT to 15006
  kTproxy,    // older istio-cni: mangle TPROXY to 15006 (and 15008)
};
enum class RuleBackend : uint8_t { kIptables, kNftables };

StatusOr<RedirectMode> ParseRedirectMode(std::string_view text);  // redirect|tproxy
StatusOr<RuleBackend> ParseRuleBackend(std::string_view text);    // iptables|nft
std::string_view ModeName(RedirectMode m);
std::string_view BackendName(RuleBackend b);

struct RedirectConfig {
  RedirectMode mode = RedirectMode::kRedirect;
  bool ipv6 = false;         // also IPv6 rules (ip6tables / ip6 matches)
  bool dns_capture = false;  // DNS to 15053 + raw conntrack zones
  uint16_t outbound_port = 15001;
  uint16_t inbound_plain_port = 15006;
  uint16_t hbone_port = 15008;
  uint16_t dns_port = 15053;
  uint32_t ztunnel_mark = 0x539;
  uint32_t connmark = 0x111;
  uint32_t mark_mask = 0xfff;
  uint16_t dns_ct_zone = 1;
};

enum class Table : uint8_t { kMangle, kNat, kRaw };
enum class Chain : uint8_t { kPrerouting, kOutput };  // ISTIO_PRERT / ISTIO_OUTPUT
enum class Proto : uint8_t { kAny, kTcp, kUdp };
enum class Iface : uint8_t { kAny, kInLo, kOutLo, kNotOutLo };
enum class Verdict : uint8_t {
  kAccept,
  kRedirect,     // to `port`
  kTproxy,       // to `port`, packet mark `value`/mask
  kSetConnmark,  // connmark = `value`/mask
  kRestoreMark,  // packet mark = connmark
  kCtZone,       // conntrack zone `value`
};

struct Rule {
  Table table = Table::kNat;
  Chain chain = Chain::kPrerouting;
  net::Family family = net::Family::kV4;
  bool family_specific = false;  // has an address match (v4 or v6 only)
  Proto proto = Proto::kAny;
  std::optional<net::IpAddress> src;
  std::optional<net::IpAddress> dst;
  bool dst_negated = false;
  std::optional<uint16_t> dport;
  bool dport_negated = false;
  std::optional<uint16_t> sport;
  Iface iface = Iface::kAny;
  std::optional<uint32_t> mark;  // masked with mark_mask
  bool mark_negated = false;
  std::optional<uint32_t> connmark;
  bool established = false;  // ct state related,established
  Verdict verdict = Verdict::kAccept;
  uint16_t port = 0;
  uint32_t value = 0;
  uint32_t mask = 0xfff;
};

// Every rule for one address family, in evaluation order per chain.
std::vector<Rule> BuildRules(const RedirectConfig& config, net::Family family);
// Which tables the config uses (raw only with DNS capture).
std::vector<Table> TablesUsed(const RedirectConfig& config);

net::IpAddress LoopbackFor(net::Family f);
net::IpAddress ProbeSourceFor(net::Family f);  // 169.254.7.127 / fd16:9254:7127:1337:ffff:ffff:ffff:ffff

}  // namespace ambit::capture
