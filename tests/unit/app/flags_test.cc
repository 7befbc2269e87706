#include "agent/app/flags.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <fstream>
#include <string>
#include <vector>

#include "agent/app/proxy_metadata.h"

namespace ambit::agent {
namespace {

struct Argv {
  explicit Argv(std::vector<std::string> a) : args(std::move(a)) {
    args.insert(args.begin(), "ambit-agent");
    for (auto& s : args) ptrs.push_back(s.data());
  }
  int argc() { return static_cast<int>(ptrs.size()); }
  char** argv() { return ptrs.data(); }
  std::vector<std::string> args;
  std::vector<char*> ptrs;
};

StatusOr<AgentFlags> Parse(std::vector<std::string> a, bool* exit_now = nullptr) {
  Argv v(std::move(a));
  bool e = false;
  auto f = ParseAgentFlags(v.argc(), v.argv(), &e);
  if (exit_now) *exit_now = e;
  return f;
}

}  // namespace

TEST_CASE("the Istio chart's `proxy ztunnel` args: Istio mode, the rest ignored") {
  auto f = Parse({"proxy", "ztunnel"});
  REQUIRE(f.ok());
  CHECK(f->config_path.empty());  // no --config: Istio mode
  CHECK(f->mode_args == "proxy ztunnel");
  auto g = Parse({"proxy", "ztunnel", "--workers", "3"});
  REQUIRE(g.ok());
  CHECK(g->workers == 3);
  auto h = Parse({"--workers", "1", "proxy"});
  REQUIRE(h.ok());
  CHECK(h->mode_args == "proxy");
}

TEST_CASE("unknown flags and other first arguments stay errors") {
  auto f = Parse({"proxy", "ztunnel", "--no-such-flag"});
  REQUIRE_FALSE(f.ok());
  auto g = Parse({"sidecar"});
  REQUIRE_FALSE(g.ok());
  CHECK(std::string(g.status().message()).find("unknown argument 'sidecar'") != std::string::npos);
  bool exit_now = false;
  auto v = Parse({"version"}, &exit_now);
  REQUIRE(v.ok());
  CHECK(exit_now);
}

TEST_CASE("DNS proxy switches: ISTIO_META_DNS_CAPTURE, PROXY_CONFIG, the flag") {
  unsetenv("ISTIO_META_DNS_CAPTURE");
  unsetenv("ISTIO_META_DNS_PROXY_ADDR");
  unsetenv("PROXY_CONFIG");
  auto on = Parse({});
  REQUIRE(on.ok());
  CHECK(on->dns_proxy);
  CHECK(on->dns_proxy_addr == "localhost:15053");
  setenv("ISTIO_META_DNS_CAPTURE", "false", 1);
  auto off = Parse({});
  REQUIRE(off.ok());
  CHECK_FALSE(off->dns_proxy);
  auto forced = Parse({"--dns-proxy", "true"});
  REQUIRE(forced.ok());
  CHECK(forced->dns_proxy);
  setenv("ISTIO_META_DNS_CAPTURE", "TRUE", 1);
  CHECK(Parse({})->dns_proxy);
  unsetenv("ISTIO_META_DNS_CAPTURE");
  setenv("PROXY_CONFIG", "proxyMetadata:\n  ISTIO_META_DNS_CAPTURE: \"false\"\n  DNS_PROXY_ADDR: 127.0.0.1:5353\n", 1);
  auto pc = Parse({});
  REQUIRE(pc.ok());
  CHECK_FALSE(pc->dns_proxy);
  CHECK(pc->dns_proxy_addr == "127.0.0.1:5353");
  setenv("PROXY_CONFIG", "proxyMetadata: [1, 2]", 1);
  CHECK_FALSE(Parse({}).ok());
  unsetenv("PROXY_CONFIG");
}

TEST_CASE("proxy metadata: mesh file, then PROXY_CONFIG, then ISTIO_META_* win") {
  std::string path = "/tmp/ambit-mesh-test-" + std::to_string(getpid());
  std::ofstream(path) << "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_A: mesh\n    B: mesh\n    C: mesh\n";
  std::map<std::string, std::string> env = {{"PROXY_CONFIG", "proxyMetadata:\n  B: pc\n  C: pc\n"},
                                            {"ISTIO_META_C", "env"}};
  auto md = ProxyMetadata(env, path);
  std::remove(path.c_str());
  REQUIRE(md.ok());
  CHECK(md->at("A") == "mesh");
  CHECK(md->at("B") == "pc");
  CHECK(md->at("C") == "env");
  CHECK(DnsCaptureEnabled({}));
  CHECK_FALSE(DnsCaptureEnabled({{"DNS_CAPTURE", "no"}}));
}

}  // namespace ambit::agent
