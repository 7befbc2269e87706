// Pieces every HTTP codec path of the waypoint shares: hop-by-hop header
// rules (RFC 9110 §7.6.1), the request headers a proxy adds, local replies
// as Envoy words them, and stream-to-stream byte relays.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/http1/codec.h"
#include "common/http2/h2_types.h"
#include "common/io/byte_stream.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"
#include "common/io/task.h"

namespace ambit::waypoint {

// True for headers that belong to one hop only (connection, keep-alive,
// proxy-connection, transfer-encoding, te, upgrade, trailer, http2-settings)
// and must not be forwarded.
bool IsHopByHop(std::string_view name);
// Drops hop-by-hop headers and those the Connection header lists (HTTP/1.1).
void StripHopByHop(http1::Headers& headers);

// x-request-id: kept when valid, else a new UUID v4 (returned). x-forwarded-for
// gets the client IP appended; x-forwarded-proto is set to "http" if absent.
std::string AddProxyHeaders(http1::Headers& headers, std::string_view client_ip);
std::string AddProxyHeaders(http2::H2Headers& headers, std::string_view client_ip);
std::string NewRequestId();

// The request head sent upstream for a downstream HTTP/1.1 request:
// hop-by-hop headers dropped, proxy headers added, Upgrade kept for an
// upgrade, chunked framing re-declared, HTTP/1.1 on the wire.
struct UpstreamRequest {
  bool ok = true;             // false: refuse the request (400), see `error`
  std::string error;
  std::string head;           // serialized
  std::string request_id;     // x-request-id (kept or generated)
  std::string upgrade_value;  // the Upgrade header of an upgrade request
};
UpstreamRequest BuildUpstreamRequest(const http1::RequestHead& head, std::string_view client_ip);

// Local replies (status, text body) in Envoy's words.
struct LocalReply {
  int status = 503;
  std::string body;          // text/plain
  std::string flag;          // response flag
  std::string details;       // response code details
  int grpc_status = 14;      // for gRPC requests (UNAVAILABLE)
  // Extra response headers (a redirect's location, route header edits).
  std::vector<std::pair<std::string, std::string>> headers;
  // A direct response's own content type is not text/plain when unset.
  std::string content_type = "text/plain";
};
LocalReply NoHealthyUpstream();
LocalReply UpstreamConnectFailure(const Status& why);
LocalReply UpstreamResetBeforeHeaders(const Status& why);
LocalReply UnknownDestination(std::string_view authority);
// The route's timeout fired before the response began: 504, flag UT
// (gRPC DEADLINE_EXCEEDED).
LocalReply UpstreamTimeout();
// The HTTP/1.1 bytes of a local reply (with Connection: close when `close`).
// `http10`: the request was HTTP/1.0 (a kept connection says `keep-alive`).
std::string SerializeLocalReply(const LocalReply& r, bool close, std::string_view request_id,
                                bool http10 = false);

// Copies `from` → `to` until EOF (then CloseWrite on `to`); bytes counted in
// *moved. Errors abort nothing: the caller decides.
io::Task<Status> Pump(io::ByteStream& from, io::ByteStream& to, uint64_t* moved,
                      io::CancelScope* scope);
// Both directions at once (TCP fallback, upgraded connections). An error in
// either direction aborts both streams and cancels `scope` (required: the
// connection's own scope).
struct RelayTotals {
  uint64_t up = 0, down = 0;  // up: downstream → upstream
  Status status;
  bool idle_timed_out = false;  // closed by the idle timeout
};
io::Task<RelayTotals> RelayStreams(io::ByteStream& downstream, io::ByteStream& upstream,
                                   io::CancelScope* scope);
// The same, closing both (Abort, scope cancelled) once no byte moved either
// way for `idle` (Envoy's tcp_proxy idle_timeout).
io::Task<RelayTotals> RelayStreamsIdle(io::Loop& loop, io::ByteStream& downstream,
                                       io::ByteStream& upstream, io::CancelScope* scope,
                                       base::Duration idle);

}  // namespace ambit::waypoint
