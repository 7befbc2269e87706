// HBONE CONNECT codec (ISTIO-COMPAT §2.3/§2.4): the client's request
// headers, the server's validation of a received request, and the status
// mapping in both directions. Pure functions over header lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/base/status.h"
#include "common/hbone/authority.h"
#include "common/hbone/headers.h"
#include "common/http2/h2_types.h"

namespace ambit::hbone {

// What the client knows when it opens a tunnel.
struct OutboundConnect {
  Authority target;
  Baggage source;                       // empty = no baggage header
  std::string client_ip;                // original client (forwarded for=)
  uint16_t client_port = 0;
  std::string service_host;             // forwarded host= when known
  std::string forwarded_network;        // inner double-HBONE CONNECT only
  std::string traceparent;              // empty = generate
};

// Headers after ":method"/":authority" for H2Conn::SubmitConnect (order:
// baggage, forwarded, traceparent, x-forwarded-network).
StatusOr<http2::H2Headers> BuildConnectHeaders(const OutboundConnect& req);
// The full request header list, pseudo headers first (no :scheme/:path).
StatusOr<http2::H2Headers> BuildConnectRequest(const OutboundConnect& req);

// A validated inbound CONNECT.
struct ConnectRequest {
  Authority target;
  std::string traceparent;
  bool traceparent_generated = false;   // absent or malformed in the request
  Forwarded forwarded;
  std::optional<Baggage> baggage;
  std::optional<std::string> forwarded_network;
};

// Checks method and authority; malformed optional headers are tolerated
// (traceparent regenerated, bad forwarded/baggage ignored). Errors are
// InvalidArgument, i.e. HttpStatusFor() == 400.
StatusOr<ConnectRequest> ParseConnectRequest(const http2::H2Headers& headers);

// Server side: the response status for an error of the request pipeline.
//   InvalidArgument, FailedPrecondition, OutOfRange -> 400 (bad request,
//   destination IP mismatch); PermissionDenied, Unauthenticated -> 401
//   (authorization deny); everything else (NotFound, Unavailable,
//   DeadlineExceeded, ...) -> 503. OK -> 200.
int HttpStatusFor(const Status& status);

// Response headers after ":status": baggage of the destination if given.
http2::H2Headers BuildConnectResponseHeaders(const std::optional<Baggage>& destination);

// Client side: OK for 200; otherwise Unavailable naming the status (and
// PermissionDenied for 401 so callers can count policy denials).
Status CheckConnectResponse(const http2::H2Headers& headers, const Authority& target);
// How the relay treats a RST_STREAM received after 200 (§2.5): NO_ERROR
// and CANCEL are a clean end of the byte stream, STREAM_CLOSED is a broken
// pipe, anything else an error.
enum class ResetMeaning : uint8_t { kCleanEof, kBrokenPipe, kError };
ResetMeaning ClassifyReset(uint32_t h2_error_code);

// Destination labels from the response baggage, if any.
std::optional<Baggage> ResponseBaggage(const http2::H2Headers& headers);

}  // namespace ambit::hbone
