// ztunnel's environment rules (upstream src/config.rs) as the agent reads them.
#include "agent/app/env_config.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <string>

#include "agent/app/agent.h"
#include "agent/app/flags.h"
#include "agent/app/proxy_metadata.h"
#include "common/net/netlink.h"

namespace ambit::agent {
namespace {

int Workers(const EnvMap& env, int cores = 4, std::optional<int> concurrency = std::nullopt) {
  StatusOr<int> n = WorkerThreadsFromEnv(env, cores, concurrency);
  REQUIRE_MESSAGE(n.ok(), n.status().ToString());
  return *n;
}

std::string WorkersError(const EnvMap& env) {
  StatusOr<int> n = WorkerThreadsFromEnv(env, 4, std::nullopt);
  REQUIRE_FALSE(n.ok());
  return std::string(n.status().message());
}

}  // namespace

TEST_CASE("worker threads: ZTUNNEL_WORKER_THREADS over the CPU-derived default") {
  CHECK(Workers({{"ZTUNNEL_WORKER_THREADS", "4"}}) == 4);
  CHECK(Workers({{"ZTUNNEL_CPU_LIMIT", "8"}, {"ZTUNNEL_WORKER_THREADS", "50%"}}) == 4);
  CHECK(Workers({{"ZTUNNEL_CPU_LIMIT", "16"}, {"ZTUNNEL_WORKER_THREADS", "30%"}}) == 5);  // 4.8 up
  CHECK(Workers({{"ZTUNNEL_CPU_LIMIT", "4"}, {"ZTUNNEL_WORKER_THREADS", "10%"}}) == 1);   // 0.4 up
  CHECK(Workers({{"ZTUNNEL_CPU_LIMIT", "6"}, {"ZTUNNEL_WORKER_THREADS", "0"}}) == 6);     // all
  // An explicit resource limit takes precedence over the downward-API count.
  CHECK(Workers({{"ZTUNNEL_CPU_LIMIT", "12"}, {"ZTUNNEL_RESOURCE_CPU_LIMIT", "3"},
                 {"ZTUNNEL_WORKER_THREADS", "100%"}}) == 3);
  CHECK(WorkersError({{"ZTUNNEL_WORKER_THREADS", "0%"}}).find("between 0 and 100") !=
        std::string::npos);
  CHECK(WorkersError({{"ZTUNNEL_WORKER_THREADS", "150%"}}).find("between 0 and 100") !=
        std::string::npos);
  CHECK(WorkersError({{"ZTUNNEL_WORKER_THREADS", "x%"}}).find("invalid percentage") !=
        std::string::npos);
  CHECK(WorkersError({{"ZTUNNEL_WORKER_THREADS", "-1"}}).find("whole non-negative") !=
        std::string::npos);
}

TEST_CASE("worker threads: the default follows the CPU limit and request, not a flat 2") {
  // No environment: a quarter of the usable cores, at least 2.
  CHECK(Workers({}, 2) == 2);
  CHECK(Workers({}, 16) == 4);
  CHECK(Workers({}, 48) == 12);
  // The chart's downward-API ZTUNNEL_CPU_LIMIT stands in for the core count.
  CHECK(Workers({{"ZTUNNEL_CPU_LIMIT", "32"}}, 4) == 8);
  CHECK(Workers({{"ZTUNNEL_CPU_LIMIT", "4"}}, 64) == 2);
  // An explicit limit (ZTUNNEL_RESOURCE_CPU_LIMIT) is the count, even below 2.
  CHECK(Workers({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "16"}}) == 16);
  CHECK(Workers({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "1"}}) == 1);
  CHECK(Workers({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "500m"}}) == 1);
  CHECK(Workers({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "2500m"}}) == 3);
  CHECK(Workers({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "1.5"}}) == 2);
  // A request raises the floor; with a limit, the larger of the two.
  CHECK(Workers({{"ZTUNNEL_RESOURCE_CPU_REQUEST", "8"}}, 4) == 8);
  CHECK(Workers({{"ZTUNNEL_RESOURCE_CPU_REQUEST", "1"}}, 4) == 2);
  CHECK(Workers({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "16"}, {"ZTUNNEL_RESOURCE_CPU_REQUEST", "4"}}) == 16);
  CHECK(Workers({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "4"}, {"ZTUNNEL_RESOURCE_CPU_REQUEST", "8"}}) == 8);
  // ProxyConfig concurrency replaces the derived default (0 = all cores).
  CHECK(Workers({}, 16, 3) == 3);
  CHECK(Workers({{"ZTUNNEL_CPU_LIMIT", "6"}}, 16, 0) == 6);
  CHECK(Workers({{"ZTUNNEL_WORKER_THREADS", "5"}}, 16, 3) == 5);
  // Bad quantities are start-up errors, as in ztunnel.
  CHECK(WorkersError({{"ZTUNNEL_RESOURCE_CPU_LIMIT", "0"}}).find("positive CPU quantity") !=
        std::string::npos);
  CHECK(WorkersError({{"ZTUNNEL_RESOURCE_CPU_REQUEST", "lots"}}).find("positive CPU quantity") !=
        std::string::npos);
  CHECK(WorkersError({{"ZTUNNEL_CPU_LIMIT", "1.5"}}).find("ZTUNNEL_CPU_LIMIT='1.5'") !=
        std::string::npos);
}

TEST_CASE("worker threads: ProxyConfig concurrency from the mesh file and PROXY_CONFIG") {
  auto c = ProxyConcurrency({{"PROXY_CONFIG", "concurrency: 3\n"}}, "");
  REQUIRE(c.ok());
  CHECK(*c == 3);
  auto none = ProxyConcurrency({}, "");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  CHECK_FALSE(ProxyConcurrency({{"PROXY_CONFIG", "concurrency: many\n"}}, "").ok());
  CHECK_FALSE(ProxyConcurrency({{"PROXY_CONFIG", "concurrency: -1\n"}}, "").ok());
}

TEST_CASE("keepalive: KEEPALIVE_* and USER_TIMEOUT_ENABLED") {
  auto d = KeepaliveFromEnv({});
  REQUIRE(d.ok());
  CHECK(d->enabled);
  CHECK(d->time == std::chrono::seconds(180));
  CHECK(d->interval == std::chrono::seconds(180));
  CHECK(d->retries == 9);
  CHECK_FALSE(d->user_timeout);
  auto k = KeepaliveFromEnv({{"KEEPALIVE_TIME", "7s"}, {"KEEPALIVE_INTERVAL", "2s"},
                             {"KEEPALIVE_RETRIES", "3"}, {"USER_TIMEOUT_ENABLED", "true"}});
  REQUIRE(k.ok());
  CHECK(k->time == std::chrono::seconds(7));
  CHECK(k->interval == std::chrono::seconds(2));
  CHECK(k->retries == 3);
  net::KeepaliveOptions o = SocketKeepalive(*k);
  CHECK(o.enabled);
  CHECK(o.time == std::chrono::seconds(7));
  CHECK(o.probes == 3);
  REQUIRE(o.user_timeout.has_value());
  CHECK(*o.user_timeout == std::chrono::milliseconds(13000));  // 7 + 2 × 3 s
  auto off = KeepaliveFromEnv({{"KEEPALIVE_ENABLED", "false"}});
  REQUIRE(off.ok());
  CHECK_FALSE(SocketKeepalive(*off).enabled);
  CHECK_FALSE(SocketKeepalive(*off).user_timeout.has_value());
  CHECK_FALSE(KeepaliveFromEnv({{"KEEPALIVE_TIME", "soon"}}).ok());
  CHECK_FALSE(KeepaliveFromEnv({{"KEEPALIVE_TIME", "0s"}}).ok());
  CHECK_FALSE(KeepaliveFromEnv({{"KEEPALIVE_RETRIES", "0"}}).ok());
  CHECK_FALSE(KeepaliveFromEnv({{"KEEPALIVE_ENABLED", "yes"}}).ok());
}

TEST_CASE("ztunnel env: PROXY_MODE, ENABLE_ORIG_SRC, IPV6_ENABLED, NETWORK, domains, version") {
  auto d = ZtunnelEnvFromEnv({});
  REQUIRE(d.ok());
  CHECK(d->orig_src == OrigSrc::kAuto);
  CHECK(d->ipv6_enabled);
  CHECK(d->network.empty());
  CHECK(d->cluster_domain == "cluster.local");
  CHECK(d->trust_domain == "cluster.local");
  CHECK(d->istio_version == kIstioCompatVersion);
  CHECK_FALSE(d->xds_on_demand);

  auto z = ZtunnelEnvFromEnv({{"PROXY_MODE", "shared"}, {"ENABLE_ORIG_SRC", "false"},
                              {"IPV6_ENABLED", "false"}, {"NETWORK", "net-west"},
                              {"CLUSTER_DOMAIN", "corp.example"}, {"TRUST_DOMAIN", "td.example"},
                              {"ISTIO_META_ISTIO_VERSION", "1.30.2"}, {"XDS_ON_DEMAND", "true"}});
  REQUIRE(z.ok());
  CHECK(z->orig_src == OrigSrc::kOff);
  CHECK_FALSE(z->ipv6_enabled);
  CHECK(z->network == "net-west");
  CHECK(z->cluster_domain == "corp.example");
  CHECK(z->trust_domain == "td.example");
  CHECK(z->istio_version == "1.30.2");
  CHECK(z->xds_on_demand);
  CHECK(ZtunnelEnvFromEnv({{"ENABLE_ORIG_SRC", "true"}})->orig_src == OrigSrc::kRequired);

  auto dedicated = ZtunnelEnvFromEnv({{"PROXY_MODE", "dedicated"}});
  REQUIRE_FALSE(dedicated.ok());
  CHECK(std::string(dedicated.status().message()).find("dedicated mode") != std::string::npos);
  auto bogus = ZtunnelEnvFromEnv({{"PROXY_MODE", "sidecar"}});
  REQUIRE_FALSE(bogus.ok());
  CHECK(std::string(bogus.status().message()).find("must be one of dedicated, shared") !=
        std::string::npos);
  // Rust's bool parsing: exactly true/false, anything else stops start-up.
  CHECK_FALSE(ZtunnelEnvFromEnv({{"IPV6_ENABLED", "False"}}).ok());
  CHECK_FALSE(ZtunnelEnvFromEnv({{"ENABLE_ORIG_SRC", "1"}}).ok());
}

TEST_CASE("flags: the environment reaches AgentFlags, flags win, on-demand needs no DNS proxy") {
  const char* vars[] = {"ZTUNNEL_CPU_LIMIT", "ZTUNNEL_WORKER_THREADS", "KEEPALIVE_TIME",
                        "IPV6_ENABLED", "XDS_ON_DEMAND", "ISTIO_META_DNS_CAPTURE", "CLUSTER_DOMAIN"};
  for (const char* v : vars) unsetenv(v);
  char arg0[] = "ambit-agent";
  bool exit_now = false;
  setenv("ZTUNNEL_CPU_LIMIT", "32", 1);
  setenv("KEEPALIVE_TIME", "30s", 1);
  setenv("IPV6_ENABLED", "false", 1);
  setenv("CLUSTER_DOMAIN", "corp.example", 1);
  {
    char* argv[] = {arg0, nullptr};
    auto f = ParseAgentFlags(1, argv, &exit_now);
    REQUIRE(f.ok());
    CHECK(f->workers == 8);  // ceil(32 / 4)
    CHECK(f->keepalive.time == std::chrono::seconds(30));
    CHECK_FALSE(f->ipv6_enabled);
    CHECK(f->cluster_domain == "corp.example");
    CHECK(f->stats_addr == "0.0.0.0:15020");  // IPV6_ENABLED=false: IPv4 wildcard
    CHECK(f->readiness_addr == "0.0.0.0:15021");
    CHECK(f->admin_addr_v6.empty());
  }
  unsetenv("IPV6_ENABLED");
  {
    // Default: ztunnel's [::] wildcard (when this netns has IPv6); flags win.
    char* argv[] = {arg0, nullptr};
    auto f = ParseAgentFlags(1, argv, &exit_now);
    REQUIRE(f.ok());
    CHECK(f->ipv6_enabled);
    const bool v6 = ambit::net::Ipv6EnabledHere();
    CHECK(f->stats_addr == (v6 ? "[::]:15020" : "0.0.0.0:15020"));
    CHECK(f->readiness_addr == (v6 ? "[::]:15021" : "0.0.0.0:15021"));
    CHECK(f->admin_addr_v6 == (v6 ? "[::1]:15000" : ""));
    char ra[] = "--readiness-addr", r4[] = "0.0.0.0:9021";
    char* argv2[] = {arg0, ra, r4, nullptr};
    auto g = ParseAgentFlags(3, argv2, &exit_now);
    REQUIRE(g.ok());
    CHECK(g->readiness_addr == "0.0.0.0:9021");
    CHECK(g->admin_addr_v6 == (v6 ? "[::1]:15000" : ""));  // --admin-addr not given
  }
  setenv("IPV6_ENABLED", "false", 1);
  {
    char w[] = "--workers", three[] = "3", cd[] = "--cluster-domain", dom[] = "flag.example";
    char* argv[] = {arg0, w, three, cd, dom, nullptr};
    auto f = ParseAgentFlags(5, argv, &exit_now);
    REQUIRE(f.ok());
    CHECK(f->workers == 3);
    CHECK(f->cluster_domain == "flag.example");
  }
  setenv("XDS_ON_DEMAND", "true", 1);
  {
    char* argv[] = {arg0, nullptr};
    auto f = ParseAgentFlags(1, argv, &exit_now);
    REQUIRE_FALSE(f.ok());
    CHECK(std::string(f.status().message()).find("DNS proxy does not support on-demand") !=
          std::string::npos);
    setenv("ISTIO_META_DNS_CAPTURE", "false", 1);
    auto g = ParseAgentFlags(1, argv, &exit_now);
    REQUIRE(g.ok());
    CHECK(g->ztunnel.xds_on_demand);
  }
  for (const char* v : vars) unsetenv(v);
}

}  // namespace ambit::agent
