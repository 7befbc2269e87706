#include "agent/app/flags.h"

#include "common/base/duration.h"
#include "agent/app/env_config.h"
#include "agent/app/proxy_metadata.h"
#include "common/net/netlink.h"
#include "common/xds/node.h"

#include <map>

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

namespace ambit::agent {

base::Duration DefaultTerminationDeadline() {
  if (const char* d = std::getenv("CONNECTION_TERMINATION_DEADLINE")) {
    if (auto parsed = base::ParseDuration(d); parsed.ok()) return *parsed;
  }
  if (const char* g = std::getenv("TERMINATION_GRACE_PERIOD_SECONDS")) {
    char* end = nullptr;
    long grace = std::strtol(g, &end, 10);
    if (end != g && grace > 0) {
      long secs = grace > 10 ? grace - 5 : grace - 1;
      return std::chrono::seconds(std::max(secs, 1L));
    }
  }
  return std::chrono::seconds(5);
}

namespace {

// ztunnel's positional arguments: argv[1] is the mode, `proxy` (what follows
// it is ignored: the Istio chart passes `proxy ztunnel`), `version` or
// `help`. Anything else is an error, as are unknown flags.
Status CheckModeArgs(const std::vector<std::string>& args, AgentFlags& f, bool* version, bool* help) {
  if (args.empty()) return absl::OkStatus();
  const std::string& mode = args.front();
  if (mode == "proxy") {
    for (const auto& a : args) f.mode_args += (f.mode_args.empty() ? "" : " ") + a;
    return absl::OkStatus();
  }
  if (mode == "version") *version = true;
  else if (mode == "help") *help = true;
  else
    return absl::InvalidArgumentError(fmt::format(
        "unknown argument '{}': the agent takes flags, optionally after the mode `proxy` "
        "(as the Istio chart passes `proxy ztunnel`); see --help", mode));
  return absl::OkStatus();
}

// DNS proxy defaults from the environment (ISTIO-COMPAT §9.3).
Status DnsDefaultsFromEnv(AgentFlags& f) {
  std::map<std::string, std::string> env = xds::ProcessEnvironment();
  ASSIGN_OR_RETURN(auto md, ProxyMetadata(env));
  f.dns_proxy = DnsCaptureEnabled(md);
  if (auto it = md.find("DNS_PROXY_ADDR"); it != md.end() && !it->second.empty()) {
    f.dns_proxy_addr = it->second;
  }
  return absl::OkStatus();
}

// ztunnel's environment beyond plain flags (env_config.h): worker count,
// keepalive, PROXY_MODE, ENABLE_ORIG_SRC, IPV6_ENABLED, NETWORK, domains.
// `workers_flag`: --workers, which takes ZTUNNEL_WORKER_THREADS's place.
Status ZtunnelDefaultsFromEnv(AgentFlags& f, const std::string& workers_flag) {
  EnvMap env = xds::ProcessEnvironment();
  if (!workers_flag.empty()) env["ZTUNNEL_WORKER_THREADS"] = workers_flag;
  ASSIGN_OR_RETURN(std::optional<int> concurrency, ProxyConcurrency(env));
  ASSIGN_OR_RETURN(f.workers, WorkerThreadsFromEnv(env, UsableCores(), concurrency));
  ASSIGN_OR_RETURN(f.keepalive, KeepaliveFromEnv(env));
  ASSIGN_OR_RETURN(f.ztunnel, ZtunnelEnvFromEnv(env));
  f.ipv6_enabled = f.ztunnel.ipv6_enabled;
  if (f.ztunnel.xds_on_demand && f.dns_proxy) {
    // ztunnel's own rule: the DNS proxy answers from the full address table.
    return absl::InvalidArgumentError(
        "XDS_ON_DEMAND=true: the DNS proxy does not support on-demand mode; set "
        "ISTIO_META_DNS_CAPTURE=false (or --dns-proxy=false), or unset XDS_ON_DEMAND");
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<AgentFlags> ParseAgentFlags(int argc, char** argv, bool* exit_now) {
  *exit_now = false;
  AgentFlags f;
  f.termination_deadline = DefaultTerminationDeadline();
  RETURN_IF_ERROR(DnsDefaultsFromEnv(f));
  CLI::App app{"ambit-agent: the Ambit node agent (ambient-mode L4 data plane)"};
  app.allow_extras(false);
  std::string workers, pool_idle = "5m", cert_ttl = "24h", deadline, connect_timeout = "10s";
  app.add_option("--config", f.config_path, "standalone config file (YAML), watched")
      ->envname("LOCAL_XDS_PATH");
  app.add_option("--node", f.node, "this node's name: workloads with this node are captured")
      ->envname("NODE_NAME");
  app.add_option("--ca-dir", f.ca_dir, "built-in CA directory (ambitctl ca init)")
      ->envname("AMBIT_CA_DIR");
  app.add_option("--redirect", f.redirect, "install in-pod redirection rules: none|auto")
      ->check(CLI::IsMember({"none", "auto"}));
  app.add_option("--redirect-backend", f.redirect_backend, "iptables|nft")
      ->envname("AMBIT_REDIRECT_BACKEND")
      ->check(CLI::IsMember({"iptables", "nft"}));
  app.add_option("--redirect-mode", f.redirect_mode,
                 "redirect (current istio-cni) or tproxy (older inbound TPROXY)")
      ->envname("AMBIT_REDIRECT_MODE")
      ->check(CLI::IsMember({"redirect", "tproxy"}));
  app.add_option("--workers", workers,
                 "worker threads: N, N% of the CPUs, 0 = all CPUs (default: ZTUNNEL_WORKER_THREADS, "
                 "else derived from ZTUNNEL_RESOURCE_CPU_LIMIT/REQUEST, ZTUNNEL_CPU_LIMIT, cores)");
  app.add_option("--io", f.io, "event loop backend: auto|uring|epoll")
      ->envname("AMBIT_IO")
      ->check(CLI::IsMember({"auto", "uring", "epoll"}));
  app.add_option("--log-level", f.log_level, "e.g. info or warn,access=debug")
      ->envname("RUST_LOG");
  app.add_option("--log-format", f.log_format, "text|json")
      ->envname("LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--admin-addr", f.admin_addr, "admin server (localhost only)");
  app.add_option("--stats-addr", f.stats_addr, "Prometheus metrics server");
  app.add_option("--readiness-addr", f.readiness_addr, "readiness server");
  app.add_option("--packet-mark", f.packet_mark, "SO_MARK on in-pod sockets")
      ->envname("PACKET_MARK");
  app.add_option("--pool-max-streams", f.pool_max_streams, "HBONE streams per pooled connection")
      ->envname("POOL_MAX_STREAMS_PER_CONNECTION")
      ->check(CLI::Range(1, 1000));
  app.add_option("--pool-idle-timeout", pool_idle, "close pooled HBONE connections idle this long")
      ->envname("POOL_UNUSED_RELEASE_TIMEOUT");
  app.add_option("--cert-ttl", cert_ttl, "workload certificate lifetime")->envname("SECRET_TTL");
  app.add_option("--termination-deadline", deadline, "drain deadline on shutdown");
  app.add_option("--connect-timeout", connect_timeout, "upstream connect timeout");
  app.add_option("--localhost-app-tunnel", f.localhost_app_tunnel,
                 "reach PROXY application tunnels (waypoints) on 127.0.0.1 / ::1: true|false")
      ->envname("LOCALHOST_APP_TUNNEL");
  std::string handshake_timeout = "10s";
  app.add_option("--handshake-timeout", handshake_timeout, "TLS handshake timeout on 15008 and outbound");
  // Istio mode (no --config): flags win over the ztunnel environment variable
  // of the same meaning; the rest of that environment is read as it is.
  static constexpr std::pair<const char*, const char*> kIstioFlags[] = {
      {"--xds-address", "XDS_ADDRESS"}, {"--xds-root-ca", "XDS_ROOT_CA"},
      {"--ca-address", "CA_ADDRESS"},   {"--ca-root-ca", "CA_ROOT_CA"},
      {"--inpod-uds", "INPOD_UDS"},     {"--cluster-id", "CLUSTER_ID"}};
  std::map<std::string, std::string> istio_values;
  for (const auto& [flag, env] : kIstioFlags) {
    app.add_option(flag, istio_values[env], fmt::format("Istio mode: overrides {}", env));
  }
  std::string dns_proxy = f.dns_proxy ? "true" : "false";
  app.add_option("--dns-proxy", dns_proxy,
                 "DNS proxy on 15053 in every captured pod: true|false (default: proxy metadata "
                 "DNS_CAPTURE, i.e. ISTIO_META_DNS_CAPTURE, else true)")
      ->check(CLI::IsMember({"true", "false"}));
  app.add_option("--dns-proxy-addr", f.dns_proxy_addr,
                 "DNS proxy address in the pod: localhost:PORT (127.0.0.1 and ::1) or IP:PORT "
                 "(default: metadata DNS_PROXY_ADDR, else localhost:15053)");
  app.add_option("--dns-resolv-conf", f.dns_resolv_conf,
                 "resolv.conf whose nameservers the DNS proxy forwards to (read once at start)")
      ->envname("AMBIT_DNS_RESOLV_CONF");
  std::string cluster_domain;
  app.add_option("--cluster-domain", cluster_domain,
                 "Kubernetes cluster domain (DNS search names; default CLUSTER_DOMAIN, else cluster.local)");
  std::vector<std::string> mode_args;
  app.add_option("mode", mode_args, "ztunnel's mode argument: proxy (the rest is ignored)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help();
    *exit_now = true;
    return f;
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  bool version = false, help = false;
  RETURN_IF_ERROR(CheckModeArgs(mode_args, f, &version, &help));
  if (help) std::cout << app.help();
  if (version) std::cout << "ambit-agent " << kAgentVersion << "\n";
  if (help || version) {
    *exit_now = true;
    return f;
  }
  f.dns_proxy = dns_proxy == "true";
  RETURN_IF_ERROR(ZtunnelDefaultsFromEnv(f, workers));
  // ztunnel binds its wildcard servers (stats 15020, readiness 15021) on [::]
  // unless IPV6_ENABLED=false; we also need IPv6 on this netns's lo.
  if (f.ipv6_enabled && net::Ipv6EnabledHere()) {
    if (app.count("--stats-addr") == 0) f.stats_addr = "[::]:15020";
    if (app.count("--readiness-addr") == 0) f.readiness_addr = "[::]:15021";
    // Admin is localhost: 127.0.0.1 and [::1], as ztunnel binds it.
    if (app.count("--admin-addr") == 0) f.admin_addr_v6 = "[::1]:15000";
  }
  f.cluster_domain = cluster_domain.empty() ? f.ztunnel.cluster_domain : cluster_domain;
  ASSIGN_OR_RETURN(f.pool_idle_timeout, base::ParseDuration(pool_idle));
  ASSIGN_OR_RETURN(f.cert_ttl, base::ParseDuration(cert_ttl));
  ASSIGN_OR_RETURN(f.connect_timeout, base::ParseDuration(connect_timeout));
  ASSIGN_OR_RETURN(f.handshake_timeout, base::ParseDuration(handshake_timeout));
  for (const auto& [env, value] : istio_values) {
    if (!value.empty()) f.env_overrides[env] = value;
  }
  if (!deadline.empty()) {
    ASSIGN_OR_RETURN(f.termination_deadline, base::ParseDuration(deadline));
  }
  return f;
}

}  // namespace ambit::agent
