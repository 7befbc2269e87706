#include "agent/capture/nft_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <sstream>

namespace ambit::capture {
namespace {

constexpr Table kAllTables[] = {Table::kMangle, Table::kNat, Table::kRaw};

std::string_view BaseChain(Chain c) { return c == Chain::kPrerouting ? "prerouting" : "output"; }
std::string_view RegularChain(Chain c) {
  return c == Chain::kPrerouting ? "istio-prert" : "istio-output";
}

std::string BaseChainSpec(Table t, Chain c) {
  std::string_view hook = BaseChain(c);
  switch (t) {
    case Table::kMangle:
      // Output is a route chain: a restored mark must trigger re-routing (table 100).
      return c == Chain::kPrerouting ? "type filter hook prerouting priority mangle; policy accept;"
                                     : "type route hook output priority mangle; policy accept;";
    case Table::kNat:
      return fmt::format("type nat hook {} priority -100; policy accept;", hook);
    case Table::kRaw:
      return fmt::format("type filter hook {} priority raw; policy accept;", hook);
  }
  return "";
}

std::string_view Ip(net::Family f) { return f == net::Family::kV4 ? "ip" : "ip6"; }

std::string SetMarkExpr(std::string_view what, uint32_t value, uint32_t mask) {
  return fmt::format("{0} set {0} & {1:#010x} | {2:#010x}", what, ~mask, value);
}

std::string MarkMatch(uint32_t value, uint32_t mask, bool negated) {
  return fmt::format("meta mark & {:#010x} {} {:#010x}", mask, negated ? "!=" : "==", value);
}

std::string Matches(const Rule& r) {
  std::vector<std::string> m;
  switch (r.iface) {
    case Iface::kInLo: m.push_back("iifname \"lo\""); break;
    case Iface::kOutLo: m.push_back("oifname \"lo\""); break;
    case Iface::kNotOutLo: m.push_back("oifname != \"lo\""); break;
    case Iface::kAny: break;
  }
  if (r.family_specific && !r.src && !r.dst) {
    m.push_back(fmt::format("meta nfproto {}", r.family == net::Family::kV4 ? "ipv4" : "ipv6"));
  }
  if (r.src) m.push_back(fmt::format("{} saddr {}", Ip(r.family), r.src->ToString()));
  if (r.dst) {
    m.push_back(fmt::format("{} daddr {}{}", Ip(r.family), r.dst_negated ? "!= " : "",
                            r.dst->ToString()));
  }
  if (r.proto != Proto::kAny) {
    std::string_view p = r.proto == Proto::kTcp ? "tcp" : "udp";
    m.push_back(fmt::format("meta l4proto {}", p));
    if (r.sport) m.push_back(fmt::format("{} sport {}", p, *r.sport));
    if (r.dport) m.push_back(fmt::format("{} dport {}{}", p, r.dport_negated ? "!= " : "", *r.dport));
  }
  if (r.mark) m.push_back(MarkMatch(*r.mark, r.mask, r.mark_negated));
  if (r.connmark) m.push_back(fmt::format("ct mark & {:#010x} == {:#010x}", r.mask, *r.connmark));
  if (r.established) m.push_back("ct state established,related");
  std::string out;
  for (const auto& s : m) out += s + " ";
  return out;
}

std::string Statement(const Rule& r) {
  switch (r.verdict) {
    case Verdict::kAccept: return "accept";
    case Verdict::kRedirect: return fmt::format("redirect to :{}", r.port);
    case Verdict::kTproxy:
      return fmt::format("{} tproxy {} to :{} accept", SetMarkExpr("meta mark", r.value, r.mask),
                         Ip(r.family), r.port);
    case Verdict::kSetConnmark: return SetMarkExpr("ct mark", r.value, r.mask);
    case Verdict::kRestoreMark: return "meta mark set ct mark";
    case Verdict::kCtZone: return fmt::format("ct zone set {}", r.value);
  }
  return "accept";
}

void RenderTable(std::ostringstream& out, Table t, const std::vector<std::string>& rules) {
  std::string name = NftTableName(t);
  out << "add table inet " << name << "\n";
  out << "delete table inet " << name << "\n";
  out << "add table inet " << name << "\n";
  for (Chain c : {Chain::kPrerouting, Chain::kOutput}) {
    out << "add chain inet " << name << " " << BaseChain(c) << " { " << BaseChainSpec(t, c)
        << " }\n";
  }
  for (Chain c : {Chain::kPrerouting, Chain::kOutput}) {
    out << "add chain inet " << name << " " << RegularChain(c) << "\n";
  }
  for (Chain c : {Chain::kPrerouting, Chain::kOutput}) {
    out << "add rule inet " << name << " " << BaseChain(c) << " jump " << RegularChain(c) << "\n";
  }
  for (const auto& r : rules) out << r;
}

}  // namespace

std::string NftTableName(Table t) {
  switch (t) {
    case Table::kMangle: return "istio-ambient-mangle";
    case Table::kNat: return "istio-ambient-nat";
    case Table::kRaw: return "istio-ambient-raw";
  }
  return "";
}

std::string RenderNftStatement(const Rule& r) { return Matches(r) + Statement(r); }

std::string RenderNftInstall(const RedirectConfig& config) {
  std::vector<Rule> rules = BuildRules(config, net::Family::kV4);
  if (config.ipv6) {
    std::vector<Rule> v6 = BuildRules(config, net::Family::kV6);
    rules.insert(rules.end(), v6.begin(), v6.end());
  }
  std::ostringstream out;
  std::vector<Table> used = TablesUsed(config);
  for (Table t : kAllTables) {
    bool in_use = std::find(used.begin(), used.end(), t) != used.end();
    if (!in_use) {
      out << "add table inet " << NftTableName(t) << "\ndelete table inet " << NftTableName(t)
          << "\n";
      continue;
    }
    // inet tables see both families: a rule without an address match is
    // rendered once even when both families are configured.
    std::set<std::string> seen;
    std::vector<std::string> lines;
    for (const Rule& r : rules) {
      if (r.table != t) continue;
      std::string line = fmt::format("add rule inet {} {} {}\n", NftTableName(t),
                                     RegularChain(r.chain), RenderNftStatement(r));
      if (seen.insert(line).second) lines.push_back(line);
    }
    RenderTable(out, t, lines);
  }
  return out.str();
}

std::string RenderNftRemove() {
  std::ostringstream out;
  for (Table t : kAllTables) {
    out << "add table inet " << NftTableName(t) << "\ndelete table inet " << NftTableName(t)
        << "\n";
  }
  return out.str();
}

}  // namespace ambit::capture
