// iptables backend: renders BuildRules() as `iptables-restore --noflush`
// input, and parses `iptables-save` output to make install idempotent
// (stale jumps deleted, ISTIO_* chains flushed by their `:` declaration) and
// remove exact (only what exists is deleted).
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/capture/redirect_rules.h"

namespace ambit::capture {

inline constexpr std::string_view kPreroutingChain = "ISTIO_PRERT";
inline constexpr std::string_view kOutputChain = "ISTIO_OUTPUT";

// What of ours exists in one family's ruleset.
struct IptablesState {
  struct TableState {
    std::set<std::string> chains;     // ISTIO_* chains declared
    std::vector<std::string> jumps;   // "PREROUTING -j ISTIO_PRERT" (as saved)
  };
  std::map<std::string, TableState> tables;  // "mangle", "nat", "raw"
  bool empty() const;
};

IptablesState ParseIptablesSave(std::string_view save_output);

std::string_view TableName(Table t);
// One rule as an iptables-restore line, e.g.
// "-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT".
std::string RenderIptablesRule(const Rule& r);
// Full install input for one family given what already exists.
std::string RenderIptablesInstall(const RedirectConfig& config, net::Family family,
                                  const IptablesState& existing);
// Remove input; empty when nothing of ours exists.
std::string RenderIptablesRemove(const IptablesState& existing);

}  // namespace ambit::capture
