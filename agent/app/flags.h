// ambit-agent command line. Every flag can also come from the environment
// variable ztunnel reads for the same setting (ISTIO-COMPAT §9.3), so the Istio
// Helm chart's environment works unchanged; a flag given on the command line
// wins over the environment.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent/app/env_config.h"
#include "common/base/clock.h"
#include "common/base/status.h"

namespace ambit::agent {

inline constexpr const char* kAgentVersion = "0.1.0";

struct AgentFlags {
  // Standalone mode.
  std::string config_path;          // --config / LOCAL_XDS_PATH
  std::string node;                 // --node / NODE_NAME
  std::string ca_dir;               // --ca-dir / AMBIT_CA_DIR
  std::string redirect = "none";    // --redirect none|auto (install in-pod rules ourselves)
  std::string redirect_backend = "iptables";  // --redirect-backend iptables|nft
  std::string redirect_mode = "redirect";     // --redirect-mode redirect|tproxy
  // Runtime.
  int workers = 2;                  // --workers / ZTUNNEL_WORKER_THREADS / derived (env_config.h)
  std::string io = "auto";          // --io auto|uring|epoll
  std::string log_level = "info";   // --log-level / RUST_LOG
  std::string log_format = "text";  // --log-format / LOG_FORMAT
  // Listeners (agent's own netns).
  std::string admin_addr = "127.0.0.1:15000";
  std::string admin_addr_v6;  // "[::1]:15000" by default when IPv6 is on (not with --admin-addr)
  std::string stats_addr = "0.0.0.0:15020";
  std::string readiness_addr = "0.0.0.0:15021";
  // Data path.
  uint32_t packet_mark = 1337;      // --packet-mark / PACKET_MARK (0x539)
  int pool_max_streams = 100;       // POOL_MAX_STREAMS_PER_CONNECTION
  base::Duration pool_idle_timeout = std::chrono::minutes(5);  // POOL_UNUSED_RELEASE_TIMEOUT
  base::Duration cert_ttl = std::chrono::hours(24);            // SECRET_TTL
  base::Duration termination_deadline = std::chrono::seconds(5);
  base::Duration connect_timeout = std::chrono::seconds(10);
  base::Duration handshake_timeout = std::chrono::seconds(10);  // --handshake-timeout
  // PROXY-protocol application tunnels (waypoints) are reached on the pod's
  // loopback, not its IP (LOCALHOST_APP_TUNNEL, ISTIO-COMPAT §2.7).
  bool localhost_app_tunnel = true;
  // DNS proxy on 15053 in every captured pod (ISTIO-COMPAT §3.1a). On unless
  // proxy metadata DNS_CAPTURE (ISTIO_META_DNS_CAPTURE, PROXY_CONFIG) says
  // otherwise; --dns-proxy wins. Standalone --redirect auto then also installs
  // istio-cni's DNS capture rules.
  bool dns_proxy = true;
  std::string dns_proxy_addr = "localhost:15053";     // --dns-proxy-addr / DNS_PROXY_ADDR metadata
  std::string dns_resolv_conf = "/etc/resolv.conf";  // --dns-resolv-conf: upstream nameservers
  std::string cluster_domain = "cluster.local";       // --cluster-domain / CLUSTER_DOMAIN
  bool ipv6_enabled = true;  // IPV6_ENABLED (false: listeners on 0.0.0.0, no AAAA from the mesh)
  // TCP keepalive of proxied sockets (KEEPALIVE_*, USER_TIMEOUT_ENABLED).
  KeepaliveSettings keepalive;
  // PROXY_MODE, ENABLE_ORIG_SRC, NETWORK, TRUST_DOMAIN, ISTIO_META_ISTIO_VERSION,
  // XDS_ON_DEMAND as read from the environment.
  ZtunnelEnv ztunnel;
  // argv[1] as ztunnel reads it: `proxy` (the Istio chart passes `proxy
  // ztunnel`; what follows `proxy` is ignored) or empty.
  std::string mode_args;
  // Istio mode: command-line values of ztunnel environment variables
  // (--xds-address → XDS_ADDRESS, ...), applied over the process environment.
  std::map<std::string, std::string> env_overrides;
};

// Parses argv and the environment. On --help / --version prints and returns
// an OK status with `exit_now` set.
StatusOr<AgentFlags> ParseAgentFlags(int argc, char** argv, bool* exit_now);

// CONNECTION_TERMINATION_DEADLINE if set, else derived from
// TERMINATION_GRACE_PERIOD_SECONDS as ISTIO-COMPAT §3.4 says, else 5 s.
base::Duration DefaultTerminationDeadline();

}  // namespace ambit::agent
