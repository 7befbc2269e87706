// HBONE connections: an http2::Session over TLS 1.3 (http2::TlsTransport) on
// a connected TCP socket, plus the CONNECT layer on top (ISTIO-COMPAT §2).
//
//   client: Handshake() (TLS verifying the server against the expected
//           identities, ALPN h2) → OpenConnect() per tunnel;
//   server: Accept() (TLS with a required client certificate of our trust
//           domain) → the handler gets each CONNECT stream and its headers
//           and answers with RespondConnect().
//
// HboneConn / HboneStream are the session and stream types under their HBONE
// names. Every failure carries a base::ErrorReason (connect, TLS, HTTP/2,
// refused, rejected with a status, denied): callers decide on the reason,
// never on the text.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/http2/session.h"
#include "common/http2/session_stream.h"
#include "common/identity/identity.h"
#include "common/io/loop.h"
#include "common/io/task.h"
#include "common/net/fd.h"
#include "common/tls/context.h"

namespace ambit::hbone {

using HboneConn = http2::Session;
using HboneStream = http2::SessionStream;

struct ConnOptions {
  http2::H2Options h2;
  base::Duration handshake_timeout = std::chrono::seconds(10);
  size_t read_buffer = 64 * 1024;
  // Stream write watermarks: Write() waits while more than `high` bytes are
  // queued on the stream and resumes under `low`.
  size_t stream_high_water = 1 << 20;
  size_t stream_low_water = 256 << 10;

  http2::SessionOptions session() const {
    return {.h2 = h2, .stream_high_water = stream_high_water, .stream_low_water = stream_low_water};
  }
};

// Client: TLS handshake on a connected socket (verifying the server against
// `expected`), then the h2 client session.
io::Task<StatusOr<std::shared_ptr<HboneConn>>> Handshake(
    io::Loop& loop, net::Fd fd, std::shared_ptr<const tls::TlsContext> ctx,
    std::vector<identity::Identity> expected, ConnOptions options);

// Server: TLS handshake (client certificate required, same trust domain),
// then the h2 server session; streams go to `handler` until the peer leaves.
io::Task<StatusOr<std::shared_ptr<HboneConn>>> Accept(io::Loop& loop, net::Fd fd,
                                                      std::shared_ptr<const tls::TlsContext> ctx,
                                                      ConnOptions options,
                                                      HboneConn::StreamHandler handler);

// Client: opens a CONNECT tunnel and waits (at most `timeout`) for the 200.
// A non-200 answer is an error naming the status with reason
// kConnectRejected (kDenied for 401); a stream the peer refused or never
// answered is kStreamRefused (safe to retry on another connection).
io::Task<StatusOr<std::unique_ptr<HboneStream>>> OpenConnect(HboneConn& conn,
                                                             std::string authority,
                                                             http2::H2Headers headers,
                                                             base::Duration timeout);

// Server: answers a CONNECT. 200 lets bytes flow; any other status ends the
// stream (RST_STREAM NO_ERROR once the response is out).
Status RespondConnect(HboneStream& stream, int status, const http2::H2Headers& headers = {});

}  // namespace ambit::hbone
