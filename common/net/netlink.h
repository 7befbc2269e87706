// Policy routing via netlink (libnl-route-3) for the original-source return
// path of ISTIO-COMPAT §4.1:
//   ip rule add fwmark 0x111/0xfff pref 32764 lookup 100
//   ip route add local 0.0.0.0/0 dev lo table 100      (and ::/0 with IPv6)
// The plain functions act on the calling thread's netns; the *InNetns
// variants run them on a helper thread inside the given netns.
#pragma once

#include <cstdint>

#include "common/base/status.h"
#include "common/net/netns.h"
#include "common/net/socket.h"

namespace ambit::net {

struct PolicyRouting {
  uint32_t mark = kConnMark;
  uint32_t mask = kMarkMask;
  uint32_t priority = 32764;
  uint32_t table = kLocalRouteTable;
  bool ipv6 = false;  // also install the IPv6 rule and ::/0 route
};

// Idempotent: existing rule/route are kept (route is replaced).
Status AddPolicyRouting(const PolicyRouting& p);
// Idempotent: missing rule/route are not an error.
Status RemovePolicyRouting(const PolicyRouting& p);
// True when the rule (v4) with these parameters exists.
StatusOr<bool> HasPolicyRule(const PolicyRouting& p);

// Whether IPv6 is usable in the calling thread's netns.
bool Ipv6EnabledHere();

Status AddPolicyRoutingInNetns(const NetnsHandle& ns, const PolicyRouting& p);
Status RemovePolicyRoutingInNetns(const NetnsHandle& ns, const PolicyRouting& p);

}  // namespace ambit::net
