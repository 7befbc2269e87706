// ambit-waypoint command line. Standalone mode (--config): the watched YAML
// file (the agent's format), the built-in CA directory, and which workload of
// the file this process is. Cluster mode (no --config): istiod's workload
// xDS and CA, the Kubernetes API for L7 config, with the environment of
// Istio's waypoint pod (POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT,
// XDS_ADDRESS, CA_ADDRESS, ...; cluster_mode.cc), each overridable by a flag.
#pragma once

#include <string>

#include "common/base/clock.h"
#include "common/base/status.h"

namespace ambit::waypoint {

struct WaypointFlags {
  std::string config_path;   // --config / LOCAL_XDS_PATH
  std::string ca_dir;        // --ca-dir / AMBIT_CA_DIR
  std::string workload_uid;  // --workload / AMBIT_WORKLOAD_UID
  int workers = 2;           // --workers
  std::string io = "auto";   // --io
  std::string log_level = "info";   // --log-level (e.g. info,access=debug)
  std::string log_format = "text";  // --log-format text|json
  std::string admin_addr = "127.0.0.1:15000";
  std::string stats_addr = "0.0.0.0:15020";
  std::string readiness_addr = "0.0.0.0:15021";
  std::string hbone_addr = "0.0.0.0:15008";
  base::Duration connect_timeout = std::chrono::seconds(10);
  base::Duration handshake_timeout = std::chrono::seconds(10);
  base::Duration cert_ttl = std::chrono::hours(24);
  base::Duration termination_deadline = std::chrono::seconds(5);
  base::Duration sniff_timeout = std::chrono::seconds(1);
  base::Duration idle_timeout = std::chrono::hours(1);
  int pool_max_streams = 100;

  // Cluster mode (config_path empty). Empty strings: from the environment.
  bool cluster_mode() const { return config_path.empty(); }
  std::string pod_name;         // --pod-name / POD_NAME
  std::string pod_namespace;    // --pod-namespace / POD_NAMESPACE
  std::string service_account;  // --service-account / SERVICE_ACCOUNT
  std::string gateway_name;     // --gateway-name / GATEWAY_NAME (else ISTIO_META_WORKLOAD_NAME)
  std::string xds_address;      // --xds-address / XDS_ADDRESS
  std::string ca_address;       // --ca-address / CA_ADDRESS
  std::string root_cert;        // --root-cert: XDS_ROOT_CA and CA_ROOT_CA
  std::string istio_token;      // --istio-token / AUTH_TOKEN
  std::string kube_api;         // --kube-api: URL, else KUBERNETES_SERVICE_HOST:PORT
  std::string kube_ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";  // --kube-ca
  std::string kube_token = "/var/run/secrets/kubernetes.io/serviceaccount/token";  // --kube-token
  bool write_status = true;     // --write-status
};

// Parses argv and the environment. --help prints every flag and sets
// `exit_now`.
StatusOr<WaypointFlags> ParseWaypointFlags(int argc, char** argv, bool* exit_now);

}  // namespace ambit::waypoint
