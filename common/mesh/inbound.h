// Inbound HBONE CONNECT target mapping (ISTIO-COMPAT §2.4 steps 4-5): which
// local port does an authority map to, or which status code refuses it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/mesh/snapshot.h"
#include "common/net/address.h"

namespace ambit::mesh {

struct InboundTarget {
  int status = 200;            // 200, or 400 / 503 to send back
  std::string reason;          // for non-200: operator-facing text
  net::SocketAddress upstream; // local pod IP : target port (app tunnel port applied)
  const Service* service = nullptr;  // service named by the authority, if any
  bool app_tunnel_proxy = false;     // write a PROXY v2 header first
  // The HBONE target as the PROXY header's destination (ISTIO-COMPAT §2.7):
  // the authority's ip:port, or for a hostname authority the service VIP on
  // the local network (IPv4 preferred) with the authority's port.
  net::SocketAddress proxy_destination;
};

// `local`: the workload whose 15008 the connection arrived on; `arrival_ip`:
// the local address of that connection. `authority`: the CONNECT :authority
// ("ip:port", "[v6]:port" or "host:port").
InboundTarget MapInboundAuthority(const Snapshot& snap, const Workload& local,
                                  const IpAddress& arrival_ip, std::string_view authority);

// destination_service of an inbound connection, as ztunnel's
// guess_inbound_service: among the services `local` backs only (a client
// cannot name another one), the one whose hostname the `Forwarded: host=`
// value gives; else the first whose target port — or, for a named port, the
// local endpoint's port — equals `target_port`; else none. Used for HBONE and
// plaintext (15006, no forwarded host) inbound alike.
const Service* GuessInboundService(const Snapshot& snap, const Workload& local,
                                   uint16_t target_port,
                                   std::optional<std::string_view> forwarded_host);

// ztunnel: an inbound CONNECT whose `x-forwarded-network` names another
// network than ours came through an east-west gateway; its TCP peer is the
// gateway, so the source workload is not looked up by IP (baggage labels it).
bool FromOtherNetwork(const std::optional<std::string>& forwarded_network,
                      std::string_view local_network);

}  // namespace ambit::mesh
