// Outbound decision (ISTIO-COMPAT §5.7) as a pure function of the snapshot:
// given the source workload and the original destination, where does the
// connection go and how. Pointers in the result point into the snapshot the
// caller passed (keep its shared_ptr alive while using them).
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "common/mesh/lb.h"
#include "common/mesh/snapshot.h"
#include "common/net/address.h"

namespace ambit::mesh {

// HTTP/2 CONNECT over mTLS to next_hop (a pod IP : 15008 or hbone_mtls_port).
struct HboneRoute {
  net::SocketAddress next_hop;
  net::SocketAddress authority;  // :authority of the CONNECT
  // The server leaf must carry one of these URI SANs.
  std::vector<std::string> expected_identities;
  const Workload* upstream = nullptr;  // the workload dialled (waypoint pod if any)
  const Service* service = nullptr;    // service the client addressed, if any
  bool via_waypoint = false;
};

// Plain TCP to a workload that does not speak HBONE.
struct TcpRoute {
  net::SocketAddress target;
  const Workload* upstream = nullptr;
  const Service* service = nullptr;
};

// Unknown destination (or PASSTHROUGH service without endpoint): TCP to the
// original destination.
struct PassthroughRoute {
  net::SocketAddress target;
};

// The picked endpoint is a hostname-only workload: the caller resolves
// `upstream->hostname` (on demand, cached by TTL) and finishes the route with
// CompleteResolved. Pointers as above.
struct ResolveRoute {
  const Workload* upstream = nullptr;
  const Service* service = nullptr;
  uint16_t port = 0;                 // translated target port
  net::SocketAddress original;       // the client's original destination
};

struct DecisionError {
  std::string reason;  // operator-facing, e.g. "no healthy upstream for ..."
};

using Decision =
    std::variant<HboneRoute, TcpRoute, PassthroughRoute, ResolveRoute, DecisionError>;

Decision Decide(const Snapshot& snap, const Workload& source, const net::SocketAddress& target,
                Rng& rng);

// The route to a resolved address of a ResolveRoute's workload (HBONE to
// ip:15008 or TCP to ip:port, as for any picked endpoint). Never a ResolveRoute.
Decision CompleteResolved(const ResolveRoute& r, const IpAddress& ip);

// A readable one-line summary for logs and tests.
std::string DescribeDecision(const Decision& d);

}  // namespace ambit::mesh
