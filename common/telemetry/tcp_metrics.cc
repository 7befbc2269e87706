#include "common/telemetry/tcp_metrics.h"

namespace ambit::telemetry {

const std::string& OrUnknown(const std::string& s) {
  static const std::string kUnknown = "unknown";
  return s.empty() ? kUnknown : s;
}

const metrics::Labels& TcpMetrics::LabelNames() {
  static const metrics::Labels kNames = {
      "reporter",
      "source_workload",
      "source_canonical_service",
      "source_canonical_revision",
      "source_workload_namespace",
      "source_principal",
      "source_app",
      "source_version",
      "source_cluster",
      "destination_service",
      "destination_service_namespace",
      "destination_service_name",
      "destination_workload",
      "destination_canonical_service",
      "destination_canonical_revision",
      "destination_workload_namespace",
      "destination_principal",
      "destination_app",
      "destination_version",
      "destination_cluster",
      "request_protocol",
      "response_flags",
      "connection_security_policy",
      "source_region",
      "source_zone",
      "destination_region",
      "destination_zone",
  };
  return kNames;
}

metrics::Labels ConnectionLabels::Values() const {
  return {
      !reporter.empty() ? reporter : reporter_source ? "source" : "destination",
      OrUnknown(source.workload),
      OrUnknown(source.canonical_service),
      OrUnknown(source.canonical_revision),
      OrUnknown(source.namespace_),
      OrUnknown(source.principal),
      OrUnknown(source.app),
      OrUnknown(source.version),
      OrUnknown(source.cluster),
      OrUnknown(destination_service),
      OrUnknown(destination_service_namespace),
      OrUnknown(destination_service_name),
      OrUnknown(destination.workload),
      OrUnknown(destination.canonical_service),
      OrUnknown(destination.canonical_revision),
      OrUnknown(destination.namespace_),
      OrUnknown(destination.principal),
      OrUnknown(destination.app),
      OrUnknown(destination.version),
      OrUnknown(destination.cluster),
      "tcp",
      response_flags.empty() ? "-" : response_flags,
      mutual_tls ? "mutual_tls" : "unknown",
      OrUnknown(source.region),
      OrUnknown(source.zone),
      OrUnknown(destination.region),
      OrUnknown(destination.zone),
  };
}

TcpMetrics::TcpMetrics(metrics::Registry& r)
    : opened(r.AddCounter("istio_tcp_connections_opened",
                          "The total number of TCP connections opened", LabelNames())),
      closed(r.AddCounter("istio_tcp_connections_closed",
                          "The total number of TCP connections closed", LabelNames())),
      received_bytes(r.AddCounter("istio_tcp_received_bytes",
                                  "The size of total bytes received during request in case of a "
                                  "TCP connection",
                                  LabelNames())),
      sent_bytes(r.AddCounter("istio_tcp_sent_bytes",
                              "The size of total bytes sent during response in case of a TCP "
                              "connection",
                              LabelNames())),
      failed(r.AddCounter("istio_tcp_connections_failed",
                          "The total number of TCP connections that failed to establish",
                          LabelNames())),
      sockets_open(r.AddGauge("istio_tcp_sockets_open", "The current number of open TCP sockets",
                              {"reporter"})) {}

}  // namespace ambit::telemetry
