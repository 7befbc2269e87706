#include "waypoint/app/flags.h"

#include <CLI/CLI.hpp>
#include <iostream>

#include "common/base/duration.h"

namespace ambit::waypoint {

StatusOr<WaypointFlags> ParseWaypointFlags(int argc, char** argv, bool* exit_now) {
  *exit_now = false;
  WaypointFlags f;
  CLI::App app{"ambit-waypoint: the Ambit waypoint (ambient-mode L7 proxy), one per waypoint pod"};
  app.allow_extras(false);
  std::string connect = "10s", handshake = "10s", ttl = "24h", deadline = "5s", sniff = "1s",
              idle = "1h";
  app.add_option("--config", f.config_path,
                 "standalone config file (YAML), watched; without it: cluster mode (istiod + "
                 "the Kubernetes API)")
      ->envname("LOCAL_XDS_PATH");
  app.add_option("--ca-dir", f.ca_dir, "built-in CA directory (shared with the agents)")
      ->envname("AMBIT_CA_DIR");
  app.add_option("--workload", f.workload_uid,
                 "uid of this waypoint pod's workload (standalone: required; cluster mode: "
                 "default the xDS workload named POD_NAMESPACE/POD_NAME)")
      ->envname("AMBIT_WORKLOAD_UID");
  app.add_option("--pod-name", f.pod_name, "cluster mode: this pod's name")->envname("POD_NAME");
  app.add_option("--pod-namespace", f.pod_namespace, "cluster mode: this pod's namespace")
      ->envname("POD_NAMESPACE");
  app.add_option("--service-account", f.service_account,
                 "cluster mode: this pod's service account (its identity)")
      ->envname("SERVICE_ACCOUNT");
  app.add_option("--gateway-name", f.gateway_name,
                 "cluster mode: the Gateway this waypoint serves (status written on it); "
                 "default ISTIO_META_WORKLOAD_NAME")
      ->envname("GATEWAY_NAME");
  app.add_option("--xds-address", f.xds_address, "cluster mode: istiod's xDS (XDS_ADDRESS)");
  app.add_option("--ca-address", f.ca_address,
                 "cluster mode: the Istio CA (CA_ADDRESS, default the xDS address)");
  app.add_option("--root-cert", f.root_cert,
                 "cluster mode: istiod's root certificate (XDS_ROOT_CA/CA_ROOT_CA, default "
                 "/var/run/secrets/istio/root-cert.pem)");
  app.add_option("--istio-token", f.istio_token,
                 "cluster mode: token for istiod (AUTH_TOKEN, default "
                 "/var/run/secrets/tokens/istio-token)");
  app.add_option("--kube-api", f.kube_api,
                 "cluster mode: Kubernetes API server URL (default "
                 "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)");
  app.add_option("--kube-ca", f.kube_ca, "cluster mode: the API server's CA bundle");
  app.add_option("--kube-token", f.kube_token,
                 "cluster mode: the service-account token for the API server (re-read per "
                 "request)");
  app.add_option("--write-status", f.write_status,
                 "cluster mode: write Gateway/route status conditions back");
  app.add_option("--workers", f.workers, "worker threads")->check(CLI::Range(1, 256));
  app.add_option("--io", f.io, "event loop backend: auto|uring|epoll")
      ->envname("AMBIT_IO")
      ->check(CLI::IsMember({"auto", "uring", "epoll"}));
  app.add_option("--log-level", f.log_level, "e.g. info or info,access=debug")
      ->envname("RUST_LOG");
  app.add_option("--log-format", f.log_format, "text|json")
      ->envname("LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--admin-addr", f.admin_addr, "admin server (localhost only): /config_dump ...");
  app.add_option("--stats-addr", f.stats_addr, "Prometheus metrics server (/metrics)");
  app.add_option("--readiness-addr", f.readiness_addr, "readiness server (/healthz/ready)");
  app.add_option("--hbone-addr", f.hbone_addr, "HBONE listener (mTLS, HTTP/2 CONNECT)");
  app.add_option("--connect-timeout", connect, "upstream connect timeout");
  app.add_option("--handshake-timeout", handshake, "TLS handshake timeout");
  app.add_option("--cert-ttl", ttl, "waypoint certificate lifetime")->envname("SECRET_TTL");
  app.add_option("--termination-deadline", deadline, "drain deadline on SIGTERM")
      ->envname("CONNECTION_TERMINATION_DEADLINE");
  app.add_option("--protocol-detection-timeout", sniff,
                 "how long to wait for a client's first bytes on ports without a declared "
                 "protocol before relaying as TCP");
  app.add_option("--idle-timeout", idle, "idle HTTP downstream connections are closed after this");
  app.add_option("--pool-max-streams", f.pool_max_streams, "HBONE streams per pooled connection")
      ->check(CLI::Range(1, 1000));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    *exit_now = true;
    return f;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (!f.config_path.empty() && f.workload_uid.empty()) {
    return absl::InvalidArgumentError("--workload is required with --config");
  }
  ASSIGN_OR_RETURN(f.connect_timeout, base::ParseDuration(connect));
  ASSIGN_OR_RETURN(f.handshake_timeout, base::ParseDuration(handshake));
  ASSIGN_OR_RETURN(f.cert_ttl, base::ParseDuration(ttl));
  ASSIGN_OR_RETURN(f.termination_deadline, base::ParseDuration(deadline));
  ASSIGN_OR_RETURN(f.sniff_timeout, base::ParseDuration(sniff));
  ASSIGN_OR_RETURN(f.idle_timeout, base::ParseDuration(idle));
  return f;
}

}  // namespace ambit::waypoint
