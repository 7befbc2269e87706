#include "common/hbone/connect_codec.h"

#include <string>
#include <utility>

#include "common/base/error.h"
#include "common/base/log.h"

namespace ambit::hbone {

using http2::FindHeader;
using http2::H2Headers;

StatusOr<H2Headers> BuildConnectHeaders(const OutboundConnect& req) {
  if (req.target.port == 0 || req.target.host.empty()) {
    return absl::InvalidArgumentError("HBONE CONNECT needs a target host and port");
  }
  H2Headers h;
  if (!req.source.empty()) h.push_back({std::string(kBaggageHeader), FormatBaggage(req.source)});
  if (!req.client_ip.empty()) {
    ASSIGN_OR_RETURN(std::string fwd,
                     FormatForwarded(req.client_ip, req.client_port, req.service_host));
    h.push_back({std::string(kForwardedHeader), std::move(fwd)});
  }
  std::string trace = req.traceparent.empty() ? GenerateTraceparent() : req.traceparent;
  if (!IsValidTraceparent(trace)) {
    return absl::InvalidArgumentError("traceparent is not 00-<32 hex>-<16 hex>-<2 hex>: " + trace);
  }
  h.push_back({std::string(kTraceparentHeader), std::move(trace)});
  if (!req.forwarded_network.empty()) {
    h.push_back({std::string(kForwardedNetworkHeader), req.forwarded_network});
  }
  return h;
}

StatusOr<H2Headers> BuildConnectRequest(const OutboundConnect& req) {
  ASSIGN_OR_RETURN(H2Headers extra, BuildConnectHeaders(req));
  H2Headers all = {{":method", "CONNECT"}, {":authority", req.target.ToString()}};
  all.insert(all.end(), std::make_move_iterator(extra.begin()),
             std::make_move_iterator(extra.end()));
  return all;
}

StatusOr<ConnectRequest> ParseConnectRequest(const H2Headers& headers) {
  const std::string* method = FindHeader(headers, ":method");
  if (method == nullptr || *method != "CONNECT") {
    return absl::InvalidArgumentError(
        "HBONE expects method CONNECT, got " +
        (method == nullptr ? std::string("none") : "\"" + method->substr(0, 32) + "\""));
  }
  const std::string* authority = FindHeader(headers, ":authority");
  if (authority == nullptr) return absl::InvalidArgumentError("HBONE CONNECT without :authority");
  ConnectRequest req;
  ASSIGN_OR_RETURN(req.target, ParseAuthority(*authority));

  const std::string* trace = FindHeader(headers, kTraceparentHeader);
  if (trace != nullptr && IsValidTraceparent(*trace)) {
    req.traceparent = *trace;
  } else {
    req.traceparent = GenerateTraceparent();
    req.traceparent_generated = true;
  }
  if (const std::string* fwd = FindHeader(headers, kForwardedHeader)) {
    auto parsed = ParseForwarded(*fwd);
    if (parsed.ok()) {
      req.forwarded = *std::move(parsed);
    } else {
      AMBIT_LOG(kDebug, "hbone", "ignoring forwarded header: {}",
                std::string(parsed.status().message()));
    }
  }
  if (const std::string* bag = FindHeader(headers, kBaggageHeader)) {
    req.baggage = ParseBaggage(*bag);
  }
  if (const std::string* net = FindHeader(headers, kForwardedNetworkHeader)) {
    if (!net->empty()) req.forwarded_network = *net;
  }
  return req;
}

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return 401;
    default:
      return 503;
  }
}

H2Headers BuildConnectResponseHeaders(const std::optional<Baggage>& destination) {
  H2Headers h;
  if (destination && !destination->empty()) {
    h.push_back({std::string(kBaggageHeader), FormatBaggage(*destination)});
  }
  return h;
}

Status CheckConnectResponse(const H2Headers& headers, const Authority& target) {
  const std::string* status = FindHeader(headers, ":status");
  if (status != nullptr && *status == "200") return absl::OkStatus();
  std::string code = status == nullptr ? "none" : status->substr(0, 8);
  std::string msg = "HBONE CONNECT to " + target.ToString() + " failed with status " + code;
  if (code == "401") {
    return base::WithReason(
        absl::PermissionDeniedError(msg + ": denied by authorization policy at the destination"),
        base::ErrorReason::kDenied);
  }
  if (code == "400") {
    return base::WithReason(absl::UnavailableError(msg + ": the destination rejected the request "
                                                         "(authority or destination IP mismatch)"),
                            base::ErrorReason::kConnectRejected);
  }
  return base::WithReason(
      absl::UnavailableError(msg + ": destination unavailable or refused the tunnel"),
      base::ErrorReason::kConnectRejected);
}

ResetMeaning ClassifyReset(uint32_t h2_error_code) {
  switch (h2_error_code) {
    case http2::kH2NoError:
    case http2::kH2Cancel:
      return ResetMeaning::kCleanEof;
    case http2::kH2StreamClosed:
      return ResetMeaning::kBrokenPipe;
    default:
      return ResetMeaning::kError;
  }
}

std::optional<Baggage> ResponseBaggage(const H2Headers& headers) {
  const std::string* bag = FindHeader(headers, kBaggageHeader);
  if (bag == nullptr) return std::nullopt;
  return ParseBaggage(*bag);
}

}  // namespace ambit::hbone
