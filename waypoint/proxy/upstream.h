// Upstream connections of one worker: byte streams to endpoints, and the
// pools that keep them between requests.
//
//   OpenStream   a fresh stream to an endpoint: an HBONE CONNECT tunnel
//                (endpointIP:15008, :authority = endpointIP:targetPort, the
//                waypoint's certificate) through the worker's HbonePool, or
//                a TCP connection in the sandwich form (this pod's agent
//                captures and tunnels it) and to endpoints without HBONE.
//   Http1Pool    idle HTTP/1.1 keep-alive streams per endpoint.
//   H2Pool       h2c sessions per endpoint, each over one upstream stream;
//                requests are multiplexed on them.
// Pools forget endpoints that left the snapshot (Prune, given the LiveKey()s
// of the workloads that remain), so a reused pod IP never receives a request
// over a stale connection.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/hbone/pool.h"
#include "common/http2/session.h"
#include "common/io/byte_stream.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"
#include "common/io/task.h"
#include "waypoint/proxy/cluster.h"
#include "waypoint/proxy/state.h"

namespace ambit::waypoint {

// A byte stream to one endpoint, with what is needed to tell a dead one.
struct UpstreamConn {
  std::unique_ptr<io::ByteStream> stream;
  http2::SessionStream* tunnel = nullptr;  // set when `stream` is an HBONE tunnel
  std::string endpoint;                    // UpstreamEndpoint::Key()
  std::string live_key;                    // UpstreamEndpoint::LiveKey()
  base::MonoTime idle_since{};
  uint32_t requests = 0;  // served on it (DestinationRule maxRequestsPerConnection)
  // False once the peer ended or reset the tunnel (a closed keep-alive).
  bool Alive() const;
};

struct UpstreamOptions {
  base::Duration connect_timeout = std::chrono::seconds(10);
  hbone::ConnOptions conn;
  size_t max_idle_per_endpoint = 64;
  base::Duration idle_timeout = std::chrono::seconds(60);
};

io::Task<StatusOr<UpstreamConn>> OpenStream(io::Loop& loop, hbone::HbonePool& pool,
                                            const WaypointState& state,
                                            const UpstreamEndpoint& ep,
                                            const UpstreamOptions& options,
                                            io::CancelScope* scope);

class Http1Pool {
 public:
  explicit Http1Pool(io::Loop& loop, const UpstreamOptions& options)
      : loop_(loop), options_(options) {}
  // An idle live stream to `endpoint`, or nullopt.
  std::optional<UpstreamConn> Take(const std::string& endpoint);
  // Keeps a stream whose last response ended cleanly with keep-alive.
  void Put(UpstreamConn conn);
  void Prune(const std::set<std::string>& live_endpoints);
  void SweepIdle();
  size_t idle() const;

 private:
  io::Loop& loop_;
  const UpstreamOptions& options_;
  std::map<std::string, std::vector<UpstreamConn>> idle_;  // by endpoint key
};

class H2Pool {
 public:
  static constexpr size_t kMaxStreamsPerSession = 100;
  H2Pool(io::Loop& loop, const UpstreamOptions& options) : loop_(loop), options_(options) {}
  ~H2Pool();
  // A client session to the endpoint that can take one more stream, dialled
  // (over OpenStream; `connect_timeout` overrides the pool's, a
  // DestinationRule tcp.connectTimeout) when none can.
  io::Task<StatusOr<std::shared_ptr<http2::Session>>> Get(
      hbone::HbonePool& pool, const WaypointState& state, const UpstreamEndpoint& ep,
      io::CancelScope* scope, std::optional<base::Duration> connect_timeout = std::nullopt);
  void Prune(const std::set<std::string>& live_endpoints);
  void Shutdown();
  size_t sessions() const;

 private:
  io::Loop& loop_;
  const UpstreamOptions& options_;
  struct Bucket {
    std::string live_key;
    std::vector<std::shared_ptr<http2::Session>> sessions;
  };
  std::map<std::string, Bucket> sessions_;  // by endpoint key
};

}  // namespace ambit::waypoint
