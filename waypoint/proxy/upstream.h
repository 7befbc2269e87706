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
//                requests are multiplexed on them (up to the cluster's
//                maxConcurrentStreams, maxRequestsPerConnection and
//                maxConnections).
// Both pools close upstreams idle past the cluster's http.idleTimeout.
// Pools forget endpoints that left the snapshot (Prune, given the LiveKey()s
// of the workloads that remain), so a reused pod IP never receives a request
// over a stale connection.
#pragma once

#include <functional>
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
#include "common/io/event.h"
#include "common/io/loop.h"
#include "common/io/task.h"
#include "waypoint/proxy/cluster.h"
#include "waypoint/proxy/circuit_breaker.h"
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
  // The cluster it last served and that cluster's http.idleTimeout (zero:
  // the pool's default); set before Http1Pool::Put.
  std::string cluster;
  base::Duration idle_timeout{0};
  bool poolable = true;  // false: never kept (an HTTP/2-upgraded request's stream)
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

// Called with the cluster name when a pool closes an upstream for being
// idle past its idle timeout (ambit_waypoint_upstream_cx_idle_timeout).
using IdleCloseFn = std::function<void(const std::string& cluster)>;

class Http1Pool {
 public:
  explicit Http1Pool(io::Loop& loop, const UpstreamOptions& options)
      : loop_(loop), options_(options) {}
  // An idle live stream to `endpoint`, or nullopt. Streams idle past their
  // timeout are closed (and counted) instead.
  std::optional<UpstreamConn> Take(const std::string& endpoint);
  // Keeps a stream whose last response ended cleanly with keep-alive.
  void Put(UpstreamConn conn);
  void Prune(const std::set<std::string>& live_endpoints);
  void SweepIdle();
  size_t idle() const;
  void SetOnIdleClose(IdleCloseFn fn) { on_idle_close_ = std::move(fn); }

 private:
  bool Expired(const UpstreamConn& c, base::MonoTime now) const;
  void CountIdle(const UpstreamConn& c) const;
  io::Loop& loop_;
  const UpstreamOptions& options_;
  std::map<std::string, std::vector<UpstreamConn>> idle_;  // by endpoint key
  IdleCloseFn on_idle_close_;
};

// What a cluster's DestinationRule asks of its h2c sessions.
struct H2Limits {
  std::optional<base::Duration> connect_timeout;  // tcp.connectTimeout
  std::string cluster;                            // for the idle-timeout count
  uint32_t max_streams = 0;        // http.maxConcurrentStreams (0: the pool's)
  uint32_t max_per_session = 0;    // http.maxRequestsPerConnection (0: unlimited)
  base::Duration idle_timeout{0};  // http.idleTimeout (zero: the pool's)
  // Circuit breaking (null: none): a session holds a connection slot
  // (tcp.maxConnections) while it is open; a request finding every
  // session full and no slot free waits as one of http1MaxPendingRequests
  // (at most the connect timeout), then overflows.
  BreakerCounters* breaker = nullptr;
  std::shared_ptr<BreakerCounters> breaker_owner;  // keeps `breaker` alive for open sessions
  const route::ConnectionPoolPolicy* pool = nullptr;
};

// The limits of cluster `rt` (null: none) for H2Pool.
H2Limits H2LimitsFor(const ClusterRuntime* rt, const std::string& cluster);

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
      io::CancelScope* scope, const H2Limits& limits = {});
  // A request stream on a pooled (or new) session, under the cluster's
  // limits: a session that just went away is replaced once; a session that
  // reached maxRequestsPerConnection drains (its streams finish). Errors:
  // kOverflow (circuit breaker, counted as the cluster's UO), else the
  // dial's or the session's.
  io::Task<StatusOr<std::unique_ptr<http2::SessionStream>>> OpenRequest(
      hbone::HbonePool& pool, const WaypointState& state, const UpstreamEndpoint& ep,
      const http2::H2Headers& headers, bool end_stream, io::CancelScope* scope,
      const H2Limits& limits = {});
  void Prune(const std::set<std::string>& live_endpoints);
  // Closes sessions without streams idle past their idle timeout.
  void SweepIdle();
  void Shutdown();
  size_t sessions() const;
  void SetOnIdleClose(IdleCloseFn fn) { on_idle_close_ = std::move(fn); }

 private:
  struct Entry {
    std::shared_ptr<http2::Session> session;
    uint32_t opened = 0;  // streams opened on it
    std::string cluster;
    base::Duration idle_timeout{0};
  };
  struct Bucket {
    std::string live_key;
    std::vector<Entry> sessions;
  };
  // A session being dialled; requests that find no usable session reserve
  // a stream on it and wait (`done`) instead of dialling their own.
  struct Dialing {
    explicit Dialing(io::Loop& loop) : done(loop) {}
    io::Event done;
    size_t reserved = 1;  // the dialler's stream
    Status status;
    std::shared_ptr<http2::Session> session;
  };
  Entry* FindUsable(const std::string& key, const H2Limits& limits);
  io::Task<StatusOr<std::shared_ptr<http2::Session>>> Dial(
      hbone::HbonePool& pool, const WaypointState& state, const UpstreamEndpoint& ep,
      const H2Limits& limits, io::CancelScope* scope, std::shared_ptr<void> slot);
  void DrainRetired();
  bool IdleExpired(const Entry& e, base::MonoTime now) const;
  io::Loop& loop_;
  const UpstreamOptions& options_;
  std::map<std::string, Bucket> sessions_;  // by endpoint key
  std::map<std::string, std::vector<std::shared_ptr<Dialing>>> dialing_;  // by endpoint key
  // Past maxRequestsPerConnection: drained once their streams ended.
  std::vector<std::shared_ptr<http2::Session>> retired_;
  IdleCloseFn on_idle_close_;
};

}  // namespace ambit::waypoint
