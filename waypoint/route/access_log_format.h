// Envoy access-log formats (command operators) as Istio configures them:
// MeshConfig accessLogFormat / accessLogEncoding and the envoyFileAccessLog
// provider's logFormat.text / logFormat.labels. Parsed here (control
// thread; unknown operators are reported), rendered per request by
// waypoint/proxy/access_log.*.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ambit::waypoint::route {

enum class LogOp : uint8_t {
  kLiteral,
  kStartTime,            // START_TIME[(strftime format, %3f/%6f/%9f, %s)]
  kReq,                  // REQ(X?Y):Z — request header (":method", ":path", ...)
  kResp,                 // RESP(X?Y):Z — response header
  kReqWithoutQuery,      // REQ_WITHOUT_QUERY(X?Y):Z
  kResponseCode,
  kResponseFlags,
  kResponseCodeDetails,
  kConnectionTerminationDetails,
  kUpstreamTransportFailureReason,
  kBytesReceived,
  kBytesSent,
  kDuration,
  kProtocol,
  kUpstreamHost,
  kUpstreamCluster,      // UPSTREAM_CLUSTER and UPSTREAM_CLUSTER_RAW
  kUpstreamLocalAddress,
  kDownstreamLocalAddress,
  kDownstreamLocalAddressWithoutPort,
  kDownstreamLocalPort,
  kDownstreamRemoteAddress,  // also DOWNSTREAM_DIRECT_REMOTE_ADDRESS
  kDownstreamRemoteAddressWithoutPort,
  kDownstreamPeerUriSan,
  kRequestedServerName,
  kRouteName,
  kUpstreamRequestAttemptCount,
  kGrpcStatus,
  kHostname,
  kUnknown,              // reported when compiled; renders "-"
};

struct LogSegment {
  LogOp op = LogOp::kLiteral;
  std::string text;      // literal text; header name (lower case) for REQ/RESP
  std::string alt;       // REQ(X?Y): Y, lower case
  size_t max_len = 0;    // :Z truncation (0 = none)
};

// One format string; also one JSON label's value.
struct LogFormat {
  std::vector<LogSegment> segments;
  // The value is exactly one operator (JSON keeps numbers typed then).
  bool SingleOperator() const {
    return segments.size() == 1 && segments[0].op != LogOp::kLiteral;
  }
};

// Parses `text`; operators outside the supported set land in `unknown`
// (as written, e.g. "%FILTER_STATE(x)%") and render "-".
LogFormat ParseLogFormat(std::string_view text, std::vector<std::string>* unknown);

// A whole access-log format: TEXT (a format string; Istio appends the
// newline when missing) or JSON (labels → values, in the order written).
struct AccessLogFormat {
  bool json = false;
  LogFormat text;
  std::vector<std::pair<std::string, LogFormat>> labels;
  // Non-string JSON label values (numbers, bools) kept as their JSON text.
  std::vector<std::pair<std::string, std::string>> raw_labels;
  std::string source;  // "istio default", "meshConfig.accessLogFormat", provider name
};

// Istio's defaults (pilot's EnvoyTextLogFormat and EnvoyJSONLogFormatIstio).
extern const std::string_view kIstioTextLogFormat;
const std::vector<std::pair<std::string_view, std::string_view>>& IstioJsonLogLabels();
AccessLogFormat DefaultTextFormat();
AccessLogFormat DefaultJsonFormat();

// Request / response headers the format reads (lower case).
void CollectHeaders(const AccessLogFormat& f, std::vector<std::string>* request,
                    std::vector<std::string>* response);

}  // namespace ambit::waypoint::route
