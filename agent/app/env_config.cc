#include "agent/app/env_config.h"

#include <fmt/format.h>
#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <thread>

#include "common/base/duration.h"
#include "common/net/socket.h"

namespace ambit::agent {
namespace {

// ztunnel's historical flat default, still the floor of the derived count.
constexpr int kDefaultWorkerThreads = 2;
// Share of the node's cores used when no explicit CPU limit is set.
constexpr double kDefaultCpuFraction = 0.25;

const std::string* Find(const EnvMap& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() ? nullptr : &it->second;
}

Status EnvError(const std::string& key, const std::string& value, std::string_view why) {
  return absl::InvalidArgumentError(fmt::format("{}='{}': {}", key, value, why));
}

StatusOr<double> ParseNumber(const std::string& s) {
  double v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || p != end) return absl::InvalidArgumentError("not a number");
  return v;
}

StatusOr<std::optional<uint64_t>> EnvUnsigned(const EnvMap& env, const std::string& key) {
  const std::string* v = Find(env, key);
  if (v == nullptr) return std::optional<uint64_t>();
  uint64_t n = 0;
  const char* end = v->data() + v->size();
  auto [p, ec] = std::from_chars(v->data(), end, n);
  if (v->empty() || ec != std::errc() || p != end) {
    return EnvError(key, *v, "expected a whole non-negative number");
  }
  return std::optional<uint64_t>(n);
}

// A Kubernetes CPU quantity ("2", "1.5", "500m") as whole CPUs, rounded up.
StatusOr<std::optional<int>> CpuQuantity(const EnvMap& env, const std::string& key) {
  const std::string* v = Find(env, key);
  if (v == nullptr) return std::optional<int>();
  std::string raw = *v;
  double scale = 1;
  if (raw.ends_with('m')) {
    raw.pop_back();
    scale = 1000;
  }
  StatusOr<double> n = ParseNumber(raw);
  if (!n.ok() || !std::isfinite(*n) || *n <= 0) {
    return EnvError(key, *v, "must be a positive CPU quantity (e.g. 2, 1.5, 500m)");
  }
  double cores = std::ceil(*n / scale);
  if (cores > 65536) return EnvError(key, *v, "more CPUs than any node has");
  return std::optional<int>(static_cast<int>(cores));
}

StatusOr<int> CpuCount(const EnvMap& env, int online_cores) {
  ASSIGN_OR_RETURN(std::optional<int> limit, CpuQuantity(env, "ZTUNNEL_RESOURCE_CPU_LIMIT"));
  if (limit) return *limit;
  ASSIGN_OR_RETURN(std::optional<uint64_t> downward, EnvUnsigned(env, "ZTUNNEL_CPU_LIMIT"));
  if (downward) return static_cast<int>(std::min<uint64_t>(*downward, 65536));
  return std::max(1, online_cores);
}

StatusOr<int> DefaultWorkerThreads(const EnvMap& env, int online_cores) {
  ASSIGN_OR_RETURN(std::optional<int> request, CpuQuantity(env, "ZTUNNEL_RESOURCE_CPU_REQUEST"));
  ASSIGN_OR_RETURN(std::optional<int> limit, CpuQuantity(env, "ZTUNNEL_RESOURCE_CPU_LIMIT"));
  // An explicit limit is the count even below the flat default; a larger
  // request raises it.
  if (limit) return std::max(*limit, request.value_or(0));
  ASSIGN_OR_RETURN(int cpus, CpuCount(env, online_cores));
  int fraction = static_cast<int>(std::ceil(cpus * kDefaultCpuFraction));
  return std::max({fraction, request.value_or(0), kDefaultWorkerThreads});
}

StatusOr<base::Duration> EnvDuration(const EnvMap& env, const std::string& key, base::Duration def) {
  const std::string* v = Find(env, key);
  if (v == nullptr) return def;
  StatusOr<base::Duration> d = base::ParseDuration(*v);
  if (!d.ok()) return EnvError(key, *v, std::string(d.status().message()));
  if (*d <= base::Duration::zero()) return EnvError(key, *v, "must be positive");
  return *d;
}

std::string Get(const EnvMap& env, const std::string& key, std::string def) {
  const std::string* v = Find(env, key);
  return v == nullptr ? std::move(def) : *v;
}

}  // namespace

StatusOr<std::optional<bool>> EnvBool(const EnvMap& env, const std::string& key) {
  const std::string* v = Find(env, key);
  if (v == nullptr) return std::optional<bool>();
  if (*v == "true") return std::optional<bool>(true);
  if (*v == "false") return std::optional<bool>(false);
  return EnvError(key, *v, "expected true or false");
}

int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

StatusOr<int> WorkerThreadsFromEnv(const EnvMap& env, int online_cores,
                                   std::optional<int> concurrency) {
  int def = 0;
  if (concurrency && *concurrency > 0) {
    def = *concurrency;
  } else if (concurrency) {
    ASSIGN_OR_RETURN(def, CpuCount(env, online_cores));  // concurrency 0: all cores
  } else {
    ASSIGN_OR_RETURN(def, DefaultWorkerThreads(env, online_cores));
  }
  const std::string key = "ZTUNNEL_WORKER_THREADS";
  const std::string* v = Find(env, key);
  if (v == nullptr) return std::max(1, def);
  if (v->ends_with('%')) {
    StatusOr<double> pct = ParseNumber(v->substr(0, v->size() - 1));
    if (!pct.ok()) return EnvError(key, *v, "invalid percentage");
    if (*pct <= 0 || *pct > 100) return EnvError(key, *v, "percentage must be between 0 and 100");
    ASSIGN_OR_RETURN(int cpus, CpuCount(env, online_cores));
    return std::max(1, static_cast<int>(std::ceil(cpus * *pct / 100.0)));
  }
  ASSIGN_OR_RETURN(std::optional<uint64_t> n, EnvUnsigned(env, key));
  if (*n == 0) return CpuCount(env, online_cores);  // 0 = all cores, like concurrency
  if (*n > 1024) return EnvError(key, *v, "at most 1024 worker threads");
  return static_cast<int>(*n);
}

StatusOr<KeepaliveSettings> KeepaliveFromEnv(const EnvMap& env) {
  KeepaliveSettings k;
  ASSIGN_OR_RETURN(k.time, EnvDuration(env, "KEEPALIVE_TIME", k.time));
  ASSIGN_OR_RETURN(k.interval, EnvDuration(env, "KEEPALIVE_INTERVAL", k.interval));
  ASSIGN_OR_RETURN(std::optional<uint64_t> retries, EnvUnsigned(env, "KEEPALIVE_RETRIES"));
  if (retries) {
    // TCP_KEEPCNT's kernel range.
    if (*retries < 1 || *retries > 127) {
      return EnvError("KEEPALIVE_RETRIES", env.at("KEEPALIVE_RETRIES"), "must be 1..127");
    }
    k.retries = static_cast<int>(*retries);
  }
  // TCP_KEEPIDLE / TCP_KEEPINTVL take whole seconds up to 32767.
  for (auto [key, d] : {std::pair{"KEEPALIVE_TIME", k.time}, {"KEEPALIVE_INTERVAL", k.interval}}) {
    if (d < std::chrono::seconds(1) || d > std::chrono::seconds(32767)) {
      return EnvError(key, env.count(key) ? env.at(key) : "", "must be 1s..32767s");
    }
  }
  ASSIGN_OR_RETURN(std::optional<bool> enabled, EnvBool(env, "KEEPALIVE_ENABLED"));
  k.enabled = enabled.value_or(true);
  ASSIGN_OR_RETURN(std::optional<bool> user_timeout, EnvBool(env, "USER_TIMEOUT_ENABLED"));
  k.user_timeout = user_timeout.value_or(false);
  return k;
}

StatusOr<ZtunnelEnv> ZtunnelEnvFromEnv(const EnvMap& env) {
  ZtunnelEnv z;
  if (const std::string* mode = Find(env, "PROXY_MODE"); mode != nullptr && *mode != "shared") {
    if (*mode == "dedicated") {
      return EnvError("PROXY_MODE", *mode,
                      "dedicated mode (one workload, PROXY_WORKLOAD_INFO) is not supported: "
                      "ambit-agent runs as the node's shared proxy (PROXY_MODE=shared)");
    }
    return EnvError("PROXY_MODE", *mode, "PROXY_MODE must be one of dedicated, shared");
  }
  ASSIGN_OR_RETURN(std::optional<bool> orig_src, EnvBool(env, "ENABLE_ORIG_SRC"));
  if (orig_src) z.orig_src = *orig_src ? OrigSrc::kRequired : OrigSrc::kOff;
  ASSIGN_OR_RETURN(std::optional<bool> ipv6, EnvBool(env, "IPV6_ENABLED"));
  z.ipv6_enabled = ipv6.value_or(true);
  z.network = Get(env, "NETWORK", "");
  // Empty is the default, not a domain: search names and SPIFFE IDs need one.
  if (std::string d = Get(env, "CLUSTER_DOMAIN", ""); !d.empty()) z.cluster_domain = d;
  if (std::string d = Get(env, "TRUST_DOMAIN", ""); !d.empty()) z.trust_domain = d;
  z.istio_version = Get(env, "ISTIO_META_ISTIO_VERSION", kIstioCompatVersion);
  ASSIGN_OR_RETURN(std::optional<bool> on_demand, EnvBool(env, "XDS_ON_DEMAND"));
  z.xds_on_demand = on_demand.value_or(false);
  z.crl_path = Get(env, "CRL_PATH", "");
  return z;
}

net::KeepaliveOptions SocketKeepalive(const KeepaliveSettings& k) {
  using std::chrono::duration_cast;
  net::KeepaliveOptions o;
  o.enabled = k.enabled;
  o.time = duration_cast<std::chrono::seconds>(k.time);
  o.interval = duration_cast<std::chrono::seconds>(k.interval);
  o.probes = k.retries;
  if (k.user_timeout) {
    o.user_timeout = duration_cast<std::chrono::milliseconds>(k.time + k.interval * k.retries);
  }
  return o;
}

const char* OrigSrcName(OrigSrc m) {
  switch (m) {
    case OrigSrc::kRequired: return "required";
    case OrigSrc::kOff: return "off";
    case OrigSrc::kAuto: break;
  }
  return "auto";
}

std::string KeepaliveText(const KeepaliveSettings& k) {
  if (!k.enabled && !k.user_timeout) return "off";
  auto secs = [](base::Duration d) { return std::chrono::duration_cast<std::chrono::seconds>(d).count(); };
  std::string s = k.enabled ? fmt::format("time={}s interval={}s retries={}", secs(k.time),
                                          secs(k.interval), k.retries)
                            : "off";
  if (k.user_timeout) s += fmt::format(" userTimeout={}s", secs(k.time + k.interval * k.retries));
  return s;
}

}  // namespace ambit::agent
