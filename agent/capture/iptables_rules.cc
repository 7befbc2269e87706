#include "agent/capture/iptables_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

namespace ambit::capture {
namespace {

std::string_view ChainName(Chain c) {
  return c == Chain::kPrerouting ? kPreroutingChain : kOutputChain;
}

std::string Host(const net::IpAddress& ip) {
  return fmt::format("{}/{}", ip.ToString(), ip.is_v4() ? 32 : 128);
}

std::string Mark(uint32_t value, uint32_t mask) { return fmt::format("{:#x}/{:#x}", value, mask); }

std::string Matches(const Rule& r) {
  std::string m;
  if (r.src) m += " -s " + Host(*r.src);
  if (r.dst) m += fmt::format(" {}-d {}", r.dst_negated ? "! " : "", Host(*r.dst));
  switch (r.iface) {
    case Iface::kInLo: m += " -i lo"; break;
    case Iface::kOutLo: m += " -o lo"; break;
    case Iface::kNotOutLo: m += " ! -o lo"; break;
    case Iface::kAny: break;
  }
  if (r.proto != Proto::kAny) {
    std::string_view p = r.proto == Proto::kTcp ? "tcp" : "udp";
    m += fmt::format(" -p {}", p);
    if (r.dport || r.sport) m += fmt::format(" -m {}", p);
    if (r.sport) m += fmt::format(" --sport {}", *r.sport);
    if (r.dport) m += fmt::format(" {}--dport {}", r.dport_negated ? "! " : "", *r.dport);
  }
  if (r.mark) m += fmt::format(" -m mark {}--mark {}", r.mark_negated ? "! " : "", Mark(*r.mark, r.mask));
  if (r.connmark) m += " -m connmark --mark " + Mark(*r.connmark, r.mask);
  if (r.established) m += " -m conntrack --ctstate RELATED,ESTABLISHED";
  return m;
}

std::string Target(const Rule& r) {
  switch (r.verdict) {
    case Verdict::kAccept: return "-j ACCEPT";
    case Verdict::kRedirect: return fmt::format("-j REDIRECT --to-ports {}", r.port);
    case Verdict::kTproxy:
      return fmt::format("-j TPROXY --on-port {} --on-ip {} --tproxy-mark {}", r.port,
                         r.family == net::Family::kV4 ? "0.0.0.0" : "::", Mark(r.value, r.mask));
    case Verdict::kSetConnmark: return "-j CONNMARK --set-xmark " + Mark(r.value, r.mask);
    case Verdict::kRestoreMark:
      return "-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff";
    case Verdict::kCtZone: return fmt::format("-j CT --zone {}", r.value);
  }
  return "-j ACCEPT";
}

bool IsOurChain(std::string_view name) {
  return name == kPreroutingChain || name == kOutputChain;
}

// Deletes stale jumps; drops chains of tables the config no longer uses.
void RenderCleanup(std::ostringstream& out, const IptablesState::TableState& t, bool drop_chains) {
  for (const auto& j : t.jumps) out << "-D " << j << "\n";
  if (!drop_chains) return;
  for (const auto& c : t.chains) out << "-F " << c << "\n";
  for (const auto& c : t.chains) out << "-X " << c << "\n";
}

}  // namespace

bool IptablesState::empty() const {
  for (const auto& [name, t] : tables) {
    if (!t.chains.empty() || !t.jumps.empty()) return false;
  }
  return true;
}

IptablesState ParseIptablesSave(std::string_view save) {
  IptablesState state;
  std::string table;
  std::istringstream in{std::string(save)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > 1 && line[0] == '*') {
      table = line.substr(1);
    } else if (line.size() > 1 && line[0] == ':' && !table.empty()) {
      std::string name = line.substr(1, line.find(' ') - 1);
      if (IsOurChain(name)) state.tables[table].chains.insert(name);
    } else if (line.rfind("-A PREROUTING ", 0) == 0 || line.rfind("-A OUTPUT ", 0) == 0) {
      size_t j = line.find(" -j ");
      if (j != std::string::npos && IsOurChain(std::string_view(line).substr(j + 4))) {
        state.tables[table].jumps.push_back(line.substr(3));
      }
    }
  }
  return state;
}

std::string_view TableName(Table t) {
  switch (t) {
    case Table::kMangle: return "mangle";
    case Table::kNat: return "nat";
    case Table::kRaw: return "raw";
  }
  return "nat";
}

std::string RenderIptablesRule(const Rule& r) {
  return fmt::format("-A {}{} {}", ChainName(r.chain), Matches(r), Target(r));
}

std::string RenderIptablesInstall(const RedirectConfig& config, net::Family family,
                                  const IptablesState& existing) {
  std::vector<Rule> rules = BuildRules(config, family);
  std::vector<Table> used = TablesUsed(config);
  std::ostringstream out;
  for (Table t : {Table::kMangle, Table::kNat, Table::kRaw}) {
    std::string name(TableName(t));
    bool in_use = std::find(used.begin(), used.end(), t) != used.end();
    auto it = existing.tables.find(name);
    if (!in_use && it == existing.tables.end()) continue;
    out << "*" << name << "\n";
    if (in_use) {
      // With --noflush, declaring a chain creates it or flushes it.
      out << ":" << kPreroutingChain << " - [0:0]\n:" << kOutputChain << " - [0:0]\n";
    }
    if (it != existing.tables.end()) RenderCleanup(out, it->second, !in_use);
    if (in_use) {
      out << "-A PREROUTING -j " << kPreroutingChain << "\n";
      out << "-A OUTPUT -j " << kOutputChain << "\n";
      for (const Rule& r : rules) {
        if (r.table == t) out << RenderIptablesRule(r) << "\n";
      }
    }
    out << "COMMIT\n";
  }
  return out.str();
}

std::string RenderIptablesRemove(const IptablesState& existing) {
  std::ostringstream out;
  for (const auto& [name, t] : existing.tables) {
    if (t.chains.empty() && t.jumps.empty()) continue;
    out << "*" << name << "\n";
    RenderCleanup(out, t, true);
    out << "COMMIT\n";
  }
  return out.str();
}

}  // namespace ambit::capture
