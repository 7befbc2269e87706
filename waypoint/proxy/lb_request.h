// The request side of DestinationRule consistentHash: the 64-bit key a
// request hashes to (a header, a cookie, a query parameter, or the client
// IP), and the cookie the waypoint issues when httpCookie has a ttl and the
// request carried none (so the client sticks to its endpoint from its next
// request on). Pure; called by the route step for both codecs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/net/address.h"
#include "waypoint/route/route_table.h"
#include "waypoint/route/traffic_policy.h"

namespace ambit::waypoint {

struct LbRequest {
  std::optional<uint64_t> hash;  // none: the policy is not hashed, or the key is absent
  std::string set_cookie;        // a Set-Cookie value to add to the response ("" = none)
};

// `view` may be null (a TCP connection: only useSourceIp can hash).
// `random` makes the issued cookie's value.
LbRequest HashRequest(const route::LoadBalancerPolicy& lb, const route::RequestView* view,
                      const net::IpAddress& client, uint64_t random);

}  // namespace ambit::waypoint
