// nftables backend: renders BuildRules() as `nft -f` input with tables
// `inet istio-ambient-{mangle,nat,raw}`. Each table is declared, deleted and
// re-created in the same transaction, so install is atomic and idempotent.
#pragma once

#include <string>
#include <vector>

#include "agent/capture/redirect_rules.h"

namespace ambit::capture {

std::string NftTableName(Table t);  // "istio-ambient-nat"
// One rule's statement list, e.g. "ip daddr != 127.0.0.1 meta l4proto tcp ... redirect to :15001".
std::string RenderNftStatement(const Rule& r);
// Install input: v4 rules, plus v6 rules when config.ipv6.
std::string RenderNftInstall(const RedirectConfig& config);
// Remove input: deletes all three tables whether or not they exist.
std::string RenderNftRemove();

}  // namespace ambit::capture
