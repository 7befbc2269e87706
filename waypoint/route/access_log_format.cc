#include "waypoint/route/access_log_format.h"

#include <array>
#include <cstdlib>

#include "common/base/ascii.h"

namespace ambit::waypoint::route {

// Istio's default TEXT format (MeshConfig accessLogFormat empty; also the
// envoyFileAccessLog provider without logFormat).
const std::string_view kIstioTextLogFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% "
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

const std::vector<std::pair<std::string_view, std::string_view>>& IstioJsonLogLabels() {
  // Keys as Istio names them for accessLogEncoding: JSON.
  static const std::vector<std::pair<std::string_view, std::string_view>> kLabels = {
      {"start_time", "%START_TIME%"},
      {"route_name", "%ROUTE_NAME%"},
      {"method", "%REQ(:METHOD)%"},
      {"path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"},
      {"protocol", "%PROTOCOL%"},
      {"response_code", "%RESPONSE_CODE%"},
      {"response_flags", "%RESPONSE_FLAGS%"},
      {"response_code_details", "%RESPONSE_CODE_DETAILS%"},
      {"connection_termination_details", "%CONNECTION_TERMINATION_DETAILS%"},
      {"bytes_received", "%BYTES_RECEIVED%"},
      {"bytes_sent", "%BYTES_SENT%"},
      {"duration", "%DURATION%"},
      {"upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"},
      {"x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"},
      {"user_agent", "%REQ(USER-AGENT)%"},
      {"request_id", "%REQ(X-REQUEST-ID)%"},
      {"authority", "%REQ(:AUTHORITY)%"},
      {"upstream_host", "%UPSTREAM_HOST%"},
      {"upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"},
      {"upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"},
      {"downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"},
      {"downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"},
      {"requested_server_name", "%REQUESTED_SERVER_NAME%"},
      {"upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"},
  };
  return kLabels;
}

namespace {

struct OpName {
  std::string_view name;
  LogOp op;
};

constexpr std::array<OpName, 29> kOps = {{
    {"RESPONSE_CODE", LogOp::kResponseCode},
    {"RESPONSE_FLAGS", LogOp::kResponseFlags},
    {"RESPONSE_CODE_DETAILS", LogOp::kResponseCodeDetails},
    {"CONNECTION_TERMINATION_DETAILS", LogOp::kConnectionTerminationDetails},
    {"UPSTREAM_TRANSPORT_FAILURE_REASON", LogOp::kUpstreamTransportFailureReason},
    {"BYTES_RECEIVED", LogOp::kBytesReceived},
    {"BYTES_SENT", LogOp::kBytesSent},
    {"DURATION", LogOp::kDuration},
    {"PROTOCOL", LogOp::kProtocol},
    {"UPSTREAM_HOST", LogOp::kUpstreamHost},
    {"UPSTREAM_CLUSTER", LogOp::kUpstreamCluster},
    {"UPSTREAM_CLUSTER_RAW", LogOp::kUpstreamCluster},
    {"UPSTREAM_LOCAL_ADDRESS", LogOp::kUpstreamLocalAddress},
    {"DOWNSTREAM_LOCAL_ADDRESS", LogOp::kDownstreamLocalAddress},
    {"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", LogOp::kDownstreamLocalAddressWithoutPort},
    {"DOWNSTREAM_LOCAL_PORT", LogOp::kDownstreamLocalPort},
    {"DOWNSTREAM_REMOTE_ADDRESS", LogOp::kDownstreamRemoteAddress},
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS", LogOp::kDownstreamRemoteAddress},
    {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", LogOp::kDownstreamRemoteAddressWithoutPort},
    {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT", LogOp::kDownstreamRemoteAddressWithoutPort},
    {"DOWNSTREAM_PEER_URI_SAN", LogOp::kDownstreamPeerUriSan},
    {"REQUESTED_SERVER_NAME", LogOp::kRequestedServerName},
    {"ROUTE_NAME", LogOp::kRouteName},
    {"UPSTREAM_REQUEST_ATTEMPT_COUNT", LogOp::kUpstreamRequestAttemptCount},
    {"GRPC_STATUS", LogOp::kGrpcStatus},
    {"HOSTNAME", LogOp::kHostname},
    {"START_TIME", LogOp::kStartTime},
    {"REQ", LogOp::kReq},
    {"RESP", LogOp::kResp},
}};

bool IsOpChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9'); }

void AddLiteral(LogFormat& f, std::string_view text) {
  if (text.empty()) return;
  if (!f.segments.empty() && f.segments.back().op == LogOp::kLiteral) {
    f.segments.back().text.append(text);
  } else {
    f.segments.push_back({LogOp::kLiteral, std::string(text), {}, 0});
  }
}

}  // namespace

LogFormat ParseLogFormat(std::string_view s, std::vector<std::string>* unknown) {
  LogFormat f;
  size_t i = 0;
  while (i < s.size()) {
    const size_t pct = s.find('%', i);
    if (pct == std::string_view::npos) {
      AddLiteral(f, s.substr(i));
      break;
    }
    AddLiteral(f, s.substr(i, pct - i));
    size_t j = pct + 1;
    while (j < s.size() && IsOpChar(s[j])) ++j;
    const std::string_view name = s.substr(pct + 1, j - pct - 1);
    std::string_view arg;
    bool has_arg = false;
    if (j < s.size() && s[j] == '(' && !name.empty()) {
      const size_t close = s.find(')', j);
      if (close == std::string_view::npos) {  // not an operator: keep as text
        AddLiteral(f, s.substr(pct, 1));
        i = pct + 1;
        continue;
      }
      arg = s.substr(j + 1, close - j - 1);
      has_arg = true;
      j = close + 1;
    }
    size_t max_len = 0;
    if (j < s.size() && s[j] == ':' && has_arg) {
      size_t k = j + 1;
      while (k < s.size() && s[k] >= '0' && s[k] <= '9') ++k;
      if (k > j + 1) {
        max_len = std::strtoul(std::string(s.substr(j + 1, k - j - 1)).c_str(), nullptr, 10);
        j = k;
      }
    }
    if (name.empty() || j >= s.size() || s[j] != '%') {
      AddLiteral(f, s.substr(pct, 1));  // a lone '%' is text
      i = pct + 1;
      continue;
    }
    const std::string_view whole = s.substr(pct, j + 1 - pct);
    i = j + 1;
    LogSegment seg;
    seg.op = LogOp::kUnknown;
    seg.max_len = max_len;
    for (const OpName& o : kOps) {
      if (o.name == name) seg.op = o.op;
    }
    if (name == "REQ_WITHOUT_QUERY") seg.op = LogOp::kReqWithoutQuery;
    const bool takes_header =
        seg.op == LogOp::kReq || seg.op == LogOp::kResp || seg.op == LogOp::kReqWithoutQuery;
    if (takes_header) {
      if (!has_arg || arg.empty()) {
        seg.op = LogOp::kUnknown;
      } else {
        const size_t q = arg.find('?');
        seg.text = base::ToLower(arg.substr(0, q));
        if (q != std::string_view::npos) seg.alt = base::ToLower(arg.substr(q + 1));
      }
    } else if (seg.op == LogOp::kStartTime) {
      seg.text = std::string(arg);  // strftime format ("" = Envoy's default)
    } else if (has_arg) {
      seg.op = LogOp::kUnknown;  // arguments on an operator that takes none
    }
    if (seg.op == LogOp::kUnknown) {
      seg.text = std::string(whole);
      if (unknown != nullptr) unknown->push_back(std::string(whole));
    }
    f.segments.push_back(std::move(seg));
  }
  return f;
}

AccessLogFormat DefaultTextFormat() {
  AccessLogFormat f;
  f.text = ParseLogFormat(kIstioTextLogFormat, nullptr);
  f.source = "istio default (TEXT)";
  return f;
}

AccessLogFormat DefaultJsonFormat() {
  AccessLogFormat f;
  f.json = true;
  for (const auto& [k, v] : IstioJsonLogLabels()) {
    f.labels.emplace_back(std::string(k), ParseLogFormat(v, nullptr));
  }
  f.source = "istio default (JSON)";
  return f;
}

void CollectHeaders(const AccessLogFormat& f, std::vector<std::string>* request,
                    std::vector<std::string>* response) {
  auto add = [](std::vector<std::string>* out, const std::string& h) {
    // Pseudo headers and what RequestInfo keeps anyway need no capture.
    if (h.empty() || h.starts_with(':') || h == "host" || h == "user-agent" ||
        h == "x-request-id") {
      return;
    }
    for (const auto& x : *out) {
      if (x == h) return;
    }
    out->push_back(h);
  };
  auto scan = [&](const LogFormat& lf) {
    for (const LogSegment& s : lf.segments) {
      if (s.op == LogOp::kReq || s.op == LogOp::kReqWithoutQuery) {
        add(request, s.text);
        add(request, s.alt);
      } else if (s.op == LogOp::kResp) {
        add(response, s.text);
        add(response, s.alt);
      }
    }
  };
  scan(f.text);
  for (const auto& [k, v] : f.labels) scan(v);
}

}  // namespace ambit::waypoint::route
