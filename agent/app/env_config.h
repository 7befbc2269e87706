// ztunnel's process environment → agent settings that are not plain flags
// (ISTIO-COMPAT §1.1, §9.3; upstream src/config.rs wins where the doc
// differs). Pure functions over an environment map so every rule is unit
// tested; flags.cc applies them and a command-line flag still wins.
//
// Invalid values are start-up errors, as in ztunnel (a bool that is not
// `true`/`false`, a CPU quantity that is not positive, an unknown PROXY_MODE).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/net/socket.h"

namespace ambit::agent {

using EnvMap = std::map<std::string, std::string>;

// Worker threads as ztunnel derives them:
//   cpu_count = ceil(ZTUNNEL_RESOURCE_CPU_LIMIT) (Kubernetes quantity: "2",
//               "1.5", "500m"), else ZTUNNEL_CPU_LIMIT (whole number, the
//               chart's downward-API limits.cpu), else the usable cores;
//   default   = ProxyConfig concurrency if > 0, all cores if 0, else
//               ZTUNNEL_RESOURCE_CPU_LIMIT ? max(limit, request)
//                 : max(ceil(0.25 × cpu_count), request, 2);
//   ZTUNNEL_WORKER_THREADS overrides: "N", "N%" of cpu_count (rounded up,
//   ≥ 1), "0" = cpu_count. Never below 1.
// `online_cores`: the cores this process may run on (sched_getaffinity).
StatusOr<int> WorkerThreadsFromEnv(const EnvMap& env, int online_cores,
                                   std::optional<int> concurrency);
// The number of CPUs in this process's affinity mask (≥ 1).
int UsableCores();

// TCP keepalive of every proxied socket (KEEPALIVE_TIME / _INTERVAL /
// _RETRIES / _ENABLED, USER_TIMEOUT_ENABLED; defaults 180 s / 180 s / 9 /
// true / false).
struct KeepaliveSettings {
  bool enabled = true;
  base::Duration time = std::chrono::seconds(180);
  base::Duration interval = std::chrono::seconds(180);
  int retries = 9;
  // TCP_USER_TIMEOUT = time + interval × retries, so a peer that stops
  // acknowledging data is given up as fast as one that stops answering probes.
  bool user_timeout = false;
};
StatusOr<KeepaliveSettings> KeepaliveFromEnv(const EnvMap& env);

// ENABLE_ORIG_SRC: unset = spoof the client's address when IP_TRANSPARENT is
// available; true = required (a pod whose listeners cannot be transparent
// fails); false = never (the app sees the agent's address).
enum class OrigSrc { kAuto, kRequired, kOff };

// The rest of ztunnel's identity/placement environment.
struct ZtunnelEnv {
  OrigSrc orig_src = OrigSrc::kAuto;
  bool ipv6_enabled = true;            // IPV6_ENABLED: listeners on [::] (else 0.0.0.0), AAAA
  std::string network;                 // NETWORK (empty = the default network)
  std::string cluster_domain = "cluster.local";  // CLUSTER_DOMAIN
  std::string trust_domain = "cluster.local";    // TRUST_DOMAIN: the agent's own identity
  std::string istio_version;           // ISTIO_META_ISTIO_VERSION (istio_build tag)
  bool xds_on_demand = false;          // XDS_ON_DEMAND
  std::string crl_path;                // CRL_PATH (empty: no CRL checks)
};
// PROXY_MODE: `shared` (default) is the only mode the agent runs; `dedicated`
// (ztunnel's single-workload dev mode) is refused by name, anything else is
// refused like ztunnel refuses it.
StatusOr<ZtunnelEnv> ZtunnelEnvFromEnv(const EnvMap& env);

// ztunnel's bool parsing (Rust `bool::from_str`): exactly "true" or "false".
StatusOr<std::optional<bool>> EnvBool(const EnvMap& env, const std::string& key);

// KEEPALIVE_* settings as socket options (TCP_USER_TIMEOUT = time + interval
// × retries when USER_TIMEOUT_ENABLED).
net::KeepaliveOptions SocketKeepalive(const KeepaliveSettings& k);
// /config_dump texts: "auto" | "required" | "off"; "time=7s interval=3s retries=4[ userTimeout=13s]" | "off".
const char* OrigSrcName(OrigSrc m);
std::string KeepaliveText(const KeepaliveSettings& k);

// The Istio release this agent's ztunnel compatibility is written against
// (ISTIO-COMPAT), the istio_build tag when ISTIO_META_ISTIO_VERSION is unset.
inline constexpr const char* kIstioCompatVersion = "1.31";

}  // namespace ambit::agent
