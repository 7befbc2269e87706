#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/capture/iptables_rules.h"
#include "agent/capture/nft_rules.h"
#include "agent/capture/redirect_rules.h"

namespace ambit::capture {
namespace {

using net::Family;

// Compares against tests/unit/capture/golden/<name>; AMBIT_UPDATE_GOLDEN=1
// rewrites the file instead (review the diff before committing).
void CheckGolden(const std::string& name, const std::string& actual) {
  std::string path = std::string(AMBIT_GOLDEN_DIR) + "/" + name;
  if (const char* u = std::getenv("AMBIT_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "missing golden file " << path);
  std::stringstream want;
  want << in.rdbuf();
  CHECK_MESSAGE(want.str() == actual, "golden " << name << " differs; got:\n" << actual);
}

RedirectConfig Config(RedirectMode mode, bool ipv6 = false, bool dns = false) {
  RedirectConfig c;
  c.mode = mode;
  c.ipv6 = ipv6;
  c.dns_capture = dns;
  return c;
}

}  // namespace

TEST_CASE("iptables golden files") {
  IptablesState none;
  CheckGolden("iptables_redirect_v4.golden",
              RenderIptablesInstall(Config(RedirectMode::kRedirect), Family::kV4, none));
  CheckGolden("iptables_tproxy_v4.golden",
              RenderIptablesInstall(Config(RedirectMode::kTproxy), Family::kV4, none));
  CheckGolden("iptables_redirect_v6_dns.golden",
              RenderIptablesInstall(Config(RedirectMode::kRedirect, true, true), Family::kV6, none));
  CheckGolden("iptables_redirect_v4_dns.golden",
              RenderIptablesInstall(Config(RedirectMode::kRedirect, false, true), Family::kV4, none));
  CheckGolden("iptables_tproxy_v4_dns.golden",
              RenderIptablesInstall(Config(RedirectMode::kTproxy, false, true), Family::kV4, none));
}

TEST_CASE("DNS capture: istio-cni's rules, before the 15001 redirect, in both modes") {
  for (RedirectMode mode : {RedirectMode::kRedirect, RedirectMode::kTproxy}) {
    std::string ipt = RenderIptablesInstall(Config(mode, false, true), Family::kV4, {});
    const char* udp = "-A ISTIO_OUTPUT ! -o lo -p udp -m udp --dport 53 -m mark ! --mark 0x539/0xfff "
                      "-j REDIRECT --to-ports 15053";
    const char* tcp = "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m tcp --dport 53 -m mark ! --mark "
                      "0x539/0xfff -j REDIRECT --to-ports 15053";
    REQUIRE(ipt.find(udp) != std::string::npos);
    REQUIRE(ipt.find(tcp) != std::string::npos);
    CHECK(ipt.find(udp) < ipt.find("--to-ports 15001"));
    CHECK(ipt.find(tcp) < ipt.find("--to-ports 15001"));
    CHECK(ipt.find("*raw") != std::string::npos);
    CHECK(ipt.find("-A ISTIO_OUTPUT -p udp -m udp --dport 53 -m mark --mark 0x539/0xfff -j CT --zone 1") !=
          std::string::npos);
    std::string nft = RenderNftInstall(Config(mode, false, true));
    const char* nudp = "oifname != \"lo\" meta l4proto udp udp dport 53 meta mark & 0x00000fff != "
                       "0x00000539 redirect to :15053";
    REQUIRE(nft.find(nudp) != std::string::npos);
    CHECK(nft.find(nudp) < nft.find("redirect to :15001"));
    CHECK(nft.find("tcp dport 53 meta mark & 0x00000fff != 0x00000539 redirect to :15053") <
          nft.find("redirect to :15001"));
    CHECK(nft.find("ct zone set 1") != std::string::npos);
  }
}

TEST_CASE("nftables golden files") {
  CheckGolden("nft_redirect.golden", RenderNftInstall(Config(RedirectMode::kRedirect)));
  CheckGolden("nft_tproxy.golden", RenderNftInstall(Config(RedirectMode::kTproxy)));
  CheckGolden("nft_redirect_dual_dns.golden",
              RenderNftInstall(Config(RedirectMode::kRedirect, true, true)));
  CheckGolden("nft_tproxy_dns.golden", RenderNftInstall(Config(RedirectMode::kTproxy, false, true)));
  CheckGolden("nft_remove.golden", RenderNftRemove());
}

TEST_CASE("the key rules of ISTIO-COMPAT 4.1 are present verbatim") {
  std::string ipt = RenderIptablesInstall(Config(RedirectMode::kRedirect), Family::kV4, {});
  for (const char* line : {
           "-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff",
           "-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark",
           "-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -j ACCEPT",
           "-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark "
           "0x539/0xfff -j REDIRECT --to-ports 15006",
           "-A ISTIO_OUTPUT -d 169.254.7.127/32 -p tcp -j ACCEPT",
           "-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT",
           "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT",
           "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT "
           "--to-ports 15001",
           "-A PREROUTING -j ISTIO_PRERT", "-A OUTPUT -j ISTIO_OUTPUT"}) {
    CHECK_MESSAGE(ipt.find(line) != std::string::npos, "missing: " << line);
  }
  // Order: in nat OUTPUT the exceptions come before the redirect.
  CHECK(ipt.find("--mark 0x111/0xfff -j ACCEPT") < ipt.find("--to-ports 15001"));
  CHECK(ipt.find("-o lo -j ACCEPT") < ipt.find("--to-ports 15001"));
  CHECK(ipt.find("*raw") == std::string::npos);
  CHECK(ipt.find("15053") == std::string::npos);  // DNS capture off by default

  std::string tp = RenderIptablesInstall(Config(RedirectMode::kTproxy), Family::kV4, {});
  CHECK(tp.find("-j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x111/0xfff") !=
        std::string::npos);
  CHECK(tp.find("REDIRECT --to-ports 15006") == std::string::npos);
  CHECK(tp.find("REDIRECT --to-ports 15001") != std::string::npos);  // outbound unchanged
}

TEST_CASE("iptables-save parsing drives idempotent install and exact remove") {
  const char* save =
      "# Generated by iptables-save\n"
      "*mangle\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:ISTIO_OUTPUT - [0:0]\n"
      ":ISTIO_PRERT - [0:0]\n:OTHER - [0:0]\n-A PREROUTING -j ISTIO_PRERT\n"
      "-A OUTPUT -j ISTIO_OUTPUT\n-A OUTPUT -j OTHER\n-A ISTIO_PRERT -j ACCEPT\nCOMMIT\n"
      "*raw\n:PREROUTING ACCEPT [0:0]\n:ISTIO_PRERT - [0:0]\n-A PREROUTING -j ISTIO_PRERT\n"
      "COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n";
  IptablesState st = ParseIptablesSave(save);
  REQUIRE(st.tables.count("mangle") == 1);
  CHECK(st.tables["mangle"].chains == std::set<std::string>{"ISTIO_OUTPUT", "ISTIO_PRERT"});
  CHECK(st.tables["mangle"].jumps ==
        std::vector<std::string>{"PREROUTING -j ISTIO_PRERT", "OUTPUT -j ISTIO_OUTPUT"});
  CHECK(st.tables.count("filter") == 0);
  CHECK_FALSE(st.empty());

  CheckGolden("iptables_remove.golden", RenderIptablesRemove(st));
  // Re-install: old jumps deleted before new ones; stale raw (DNS off) dropped.
  CheckGolden("iptables_reinstall_v4.golden",
              RenderIptablesInstall(Config(RedirectMode::kRedirect), Family::kV4, st));

  IptablesState clean = ParseIptablesSave("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n");
  CHECK(clean.empty());
  CHECK(RenderIptablesRemove(clean).empty());
}

TEST_CASE("mode and backend parsing") {
  CHECK(*ParseRedirectMode("tproxy") == RedirectMode::kTproxy);
  CHECK(*ParseRedirectMode("redirect") == RedirectMode::kRedirect);
  auto bad = ParseRedirectMode("ebpf");
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()) ==
        "unknown redirect mode 'ebpf': want redirect or tproxy");
  CHECK(*ParseRuleBackend("nft") == RuleBackend::kNftables);
  CHECK(*ParseRuleBackend("iptables") == RuleBackend::kIptables);
  CHECK_FALSE(ParseRuleBackend("pf").ok());
}

}  // namespace ambit::capture
