// `ambitctl redirect install|remove --netns PATH [--mode redirect|tproxy]
//  [--backend iptables|nft] [--dns-capture] [--ipv6 auto|on|off]`:
// installs the in-pod redirection of ISTIO-COMPAT §4.1 for standalone use.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "agent/capture/redirect_installer.h"
#include "common/net/netns.h"
#include "tools/ambitctl/commands.h"

namespace ambit::ctl {
namespace {

struct RedirectArgs {
  std::string netns;
  std::string mode = "redirect";
  std::string backend = "iptables";
  std::string ipv6 = "auto";
  bool dns_capture = false;
};

int Fail(const Status& s) {
  std::fprintf(stderr, "ambitctl redirect: %s\n", std::string(s.message()).c_str());
  return 1;
}

StatusOr<net::NetnsHandle> OpenChecked(const RedirectArgs& a) {
  if (::geteuid() != 0) {
    return absl::PermissionDeniedError(
        "must run as root (needs CAP_SYS_ADMIN to enter the netns and CAP_NET_ADMIN for rules)");
  }
  return net::NetnsHandle::Open(a.netns);
}

int RunInstall(const RedirectArgs& a) {
  auto mode = capture::ParseRedirectMode(a.mode);
  if (!mode.ok()) return Fail(mode.status());
  auto backend = capture::ParseRuleBackend(a.backend);
  if (!backend.ok()) return Fail(backend.status());
  auto ns = OpenChecked(a);
  if (!ns.ok()) return Fail(ns.status());
  capture::RedirectConfig config;
  config.mode = *mode;
  config.dns_capture = a.dns_capture;
  if (a.ipv6 == "auto") {
    auto v6 = capture::Ipv6EnabledIn(*ns);
    if (!v6.ok()) return Fail(v6.status());
    config.ipv6 = *v6;
  } else {
    config.ipv6 = a.ipv6 == "on";
  }
  Status s = capture::InstallRedirection(*ns, *backend, config);
  if (!s.ok()) return Fail(s);
  std::printf("installed %s redirection (%s%s) in %s\n", std::string(capture::ModeName(*mode)).c_str(),
              std::string(capture::BackendName(*backend)).c_str(), config.ipv6 ? ", ipv6" : "",
              ns->description().c_str());
  return 0;
}

int RunRemove(const RedirectArgs& a) {
  auto backend = capture::ParseRuleBackend(a.backend);
  if (!backend.ok()) return Fail(backend.status());
  auto ns = OpenChecked(a);
  if (!ns.ok()) return Fail(ns.status());
  Status s = capture::RemoveRedirection(*ns, *backend);
  if (!s.ok()) return Fail(s);
  std::printf("removed redirection (%s) from %s\n",
              std::string(capture::BackendName(*backend)).c_str(), ns->description().c_str());
  return 0;
}

void AddCommon(CLI::App* c, RedirectArgs& a) {
  c->add_option("--netns", a.netns, "pod netns: /var/run/netns/NAME, NAME, or /proc/PID/ns/net")
      ->required();
  c->add_option("--backend", a.backend, "iptables | nft")
      ->check(CLI::IsMember({"iptables", "nft", "nftables"}));
}

}  // namespace

void RegisterRedirectCommands(CLI::App& app) {
  auto args = std::make_shared<RedirectArgs>();
  auto* r = app.add_subcommand("redirect", "in-pod traffic redirection (ISTIO-COMPAT 4.1)");
  r->require_subcommand(1);
  auto* install = r->add_subcommand("install", "install the redirection rules in a pod netns");
  AddCommon(install, *args);
  install->add_option("--mode", args->mode, "redirect (nat REDIRECT) | tproxy (mangle TPROXY)")
      ->check(CLI::IsMember({"redirect", "tproxy"}));
  install->add_option("--ipv6", args->ipv6, "auto | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  install->add_flag("--dns-capture", args->dns_capture, "also redirect DNS to 15053");
  install->callback([args] { SetExitCode(RunInstall(*args)); });
  auto* remove = r->add_subcommand("remove", "remove the redirection rules from a pod netns");
  AddCommon(remove, *args);
  remove->callback([args] { SetExitCode(RunRemove(*args)); });
}

}  // namespace ambit::ctl
