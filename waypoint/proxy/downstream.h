// One downstream connection (an HBONE CONNECT stream, or a sandwich
// connection from this pod's agent) after its destination is known: what
// every protocol handler of the waypoint needs to serve it.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/identity/identity.h"
#include "common/io/byte_stream.h"
#include "common/io/cancel.h"
#include "common/io/task.h"
#include "common/mesh/types.h"
#include "common/net/address.h"
#include "waypoint/proxy/cluster.h"
#include "waypoint/proxy/request_log.h"
#include "waypoint/proxy/state.h"

namespace ambit::waypoint {

class Worker;

// Envoy's listener for the connection: the service port (VIP-addressed) or
// the workload (pod-addressed) the client asked for.
struct Target {
  net::SocketAddress authority;             // as the client addressed it
  const mesh::Service* service = nullptr;   // VIP-addressed
  const mesh::Workload* workload = nullptr; // pod-addressed (no service route)
  uint16_t port = 0;
  mesh::AppProtocol protocol = mesh::AppProtocol::kUnknown;
  std::string Describe() const;
};

// Resolves the CONNECT authority (or PROXY destination) against the snapshot.
// Error: no service or workload there (answered 503 / closed).
StatusOr<Target> ResolveTarget(const WaypointState& state, const net::SocketAddress& authority);

struct Downstream {
  Worker& worker;
  std::shared_ptr<const WaypointState> state;  // pinned for the connection
  Target target;
  net::SocketAddress peer;                     // the client
  std::string principal;                       // client SPIFFE id ("" if unknown)
  const mesh::Workload* source = nullptr;      // the client's workload, if known
  bool mtls = false;
  io::CancelScope* scope = nullptr;            // the connection's

  RequestInfo NewRequest(base::MonoTime now) const;
  // An endpoint for the next request (by the service cluster's
  // DestinationRule policy; the pod itself when pod-addressed). `hash`: the
  // request's consistent-hash key (none: useSourceIp still hashes the
  // client); `filter`: outlier ejection. Null: no healthy upstream.
  EndpointPtr PickEndpoint(const std::string& avoid = {},
                           std::optional<uint64_t> hash = std::nullopt,
                           const EndpointFilter* filter = nullptr,
                           const std::vector<uint32_t>* exclude_priorities = nullptr) const;
  std::string ClusterName() const;
};

// Serves a connection whose destination is resolved: tells the protocol
// (declared on the port, else sniffed) and runs HTTP/1.1, HTTP/2 or TCP.
// The caller owns `stream` (and waits for an HBONE stream's clean close).
io::Task<void> ServeDownstream(Downstream d, io::ByteStream& stream);

// Protocol handlers (http1_proxy.cc, h2_proxy.cc, tcp_proxy.cc).
io::Task<void> ServeHttp1(const Downstream& d, io::ByteStream& stream);
io::Task<void> ServeHttp2(const Downstream& d, io::ByteStream& stream);
io::Task<void> ServeTcp(const Downstream& d, io::ByteStream& stream);

// What the first bytes of a connection look like.
enum class Sniffed : uint8_t { kNeedMore, kHttp1, kHttp2, kOther };
Sniffed SniffProtocol(std::span<const std::byte> first);

}  // namespace ambit::waypoint
