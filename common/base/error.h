// Typed failure reasons carried on an absl::Status, so that code decides on
// an enum and never on error text (STYLE.md rule 11: "status + a typed
// reason"). The reason travels as a Status payload: it survives copies,
// StatusOr and re-wrapping with WithContext().
//
//   co_return base::WithReason(absl::UnavailableError("..."), ErrorReason::kStreamRefused);
//   if (base::ReasonOf(st) == ErrorReason::kStreamRefused) retry();
//
// Reasons are a closed vocabulary shared by every layer that reports
// connection-level failures (socket connect, TLS, HTTP/2, HBONE CONNECT,
// upstream HTTP). A Status without a reason reads as kNone.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/base/status.h"

namespace ambit::base {

enum class ErrorReason : uint8_t {
  kNone = 0,
  kConnectFailed,    // TCP connect refused / unreachable / socket creation failed
  kConnectTimeout,   // TCP connect did not complete in time
  kTlsHandshake,     // TLS handshake failed (certificate, identity, alert, ALPN)
  kTlsTimeout,       // TLS handshake did not complete in time
  kH2Setup,          // HTTP/2 session could not be created
  kH2Protocol,       // the peer violated HTTP/2 (GOAWAY with an error, bad frames)
  kStreamRefused,    // REFUSED_STREAM or GOAWAY before the peer processed the stream: safe to retry
  kStreamReset,      // the peer reset the stream after processing it
  kConnClosed,       // the connection ended (peer closed, keepalive failure, local close)
  kConnectRejected,  // HBONE CONNECT answered with a non-200 status (see the status code)
  kDenied,           // authorization denied (HBONE 401, HTTP 403)
  kResponseTimeout,  // no response headers in time
  kPeerClosed,       // the peer closed its side before the exchange was complete
  kMalformed,        // the peer sent bytes that do not parse (HTTP/1.1 or HTTP/2 message)
  kOverflow,         // a local limit (buffers, streams, pending requests) was reached
  kCancelled,        // cancelled locally (drain, policy change, client went away)
};

// Stable snake_case name for logs and metric labels.
std::string_view ErrorReasonName(ErrorReason r);

// `st` with `r` attached (OK stays OK).
Status WithReason(Status st, ErrorReason r);
// The attached reason, kNone when there is none.
ErrorReason ReasonOf(const Status& st);
// Prefixes the message with `context` ("HBONE to 10.0.2.5:15008: ..."),
// keeping the code and every payload (the reason).
Status WithContext(const Status& st, std::string_view context);

}  // namespace ambit::base
