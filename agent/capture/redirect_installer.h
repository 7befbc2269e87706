// Installs / removes the in-pod redirection of ISTIO-COMPAT §4.1 inside a pod
// netns: the rules (iptables-restore or nft, run inside the netns) and the
// policy routing (netlink). Used by standalone mode and `ambitctl redirect`.
// Blocking; call from the control thread or a tool, never from a worker.
#pragma once

#include "agent/capture/redirect_rules.h"
#include "common/base/status.h"
#include "common/net/netns.h"

namespace ambit::capture {

// Idempotent: a re-install replaces whatever of ours is there (also when the
// mode or DNS capture changed). IPv6 rules only when config.ipv6.
Status InstallRedirection(const net::NetnsHandle& ns, RuleBackend backend,
                          const RedirectConfig& config);

// Removes everything of ours for `backend` (both families) and the policy
// routing. Missing pieces are not an error.
Status RemoveRedirection(const net::NetnsHandle& ns, RuleBackend backend);

// Whether IPv6 is enabled inside `ns` (decides config.ipv6 by default).
StatusOr<bool> Ipv6EnabledIn(const net::NetnsHandle& ns);

}  // namespace ambit::capture
