// Istio-standard TCP metrics of the agent (ISTIO-COMPAT §8.1), declared once.
// Label names and order are byte-identical to ztunnel's so Istio dashboards
// (Grafana, Kiali) work unchanged; missing values render as "unknown".
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/metrics/registry.h"

namespace ambit::telemetry {

// response_flags vocabulary.
inline constexpr std::string_view kFlagNone = "-";
inline constexpr std::string_view kFlagDeny = "DENY";
inline constexpr std::string_view kFlagConnect = "CONNECT";
inline constexpr std::string_view kFlagTlsFailure = "TLS_FAILURE";
inline constexpr std::string_view kFlagH2HandshakeFailure = "H2_HANDSHAKE_FAILURE";
inline constexpr std::string_view kFlagNetworkPolicy = "NETWORK_POLICY";
inline constexpr std::string_view kFlagIdentityError = "IDENTITY_ERROR";

// A label value, or "unknown" when empty (Istio's rendering of missing values).
const std::string& OrUnknown(const std::string& s);

// One side of a connection as the labels see it.
struct PeerLabels {
  std::string workload;            // workload_name
  std::string canonical_service;   // canonical_name
  std::string canonical_revision;
  std::string namespace_;
  std::string principal;           // spiffe://...
  std::string app;                 // = canonical service
  std::string version;             // = canonical revision
  std::string cluster;
  std::string region;
  std::string zone;
};

struct ConnectionLabels {
  bool reporter_source = true;     // outbound = "source", inbound = "destination"
  std::string reporter;            // when set, the reporter label as is ("waypoint")
  PeerLabels source;
  PeerLabels destination;
  std::string destination_service;            // hostname
  std::string destination_service_namespace;
  std::string destination_service_name;
  bool mutual_tls = false;                    // connection_security_policy
  std::string response_flags = "-";

  // Values in the order of TcpMetrics::LabelNames().
  metrics::Labels Values() const;
};

class TcpMetrics {
 public:
  explicit TcpMetrics(metrics::Registry& registry);

  static const metrics::Labels& LabelNames();

  metrics::CounterFamily& opened;
  metrics::CounterFamily& closed;
  metrics::CounterFamily& received_bytes;
  metrics::CounterFamily& sent_bytes;
  metrics::CounterFamily& failed;
  metrics::GaugeFamily& sockets_open;  // label: reporter
};

}  // namespace ambit::telemetry
