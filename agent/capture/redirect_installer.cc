#include "agent/capture/redirect_installer.h"

#include <string>

#include "agent/capture/iptables_rules.h"
#include "agent/capture/netns_exec.h"
#include "agent/capture/nft_rules.h"
#include "common/base/log.h"
#include "common/net/cat.h"
#include "common/net/netlink.h"

namespace ambit::capture {
namespace {

using net::Cat;
using net::Family;

std::string_view FamilyTool(Family f, bool save) {
  if (f == Family::kV4) return save ? "iptables-save" : "iptables-restore";
  return save ? "ip6tables-save" : "ip6tables-restore";
}

StatusOr<std::string> RunTool(const net::NetnsHandle& ns, std::string_view tool,
                              std::string_view package, std::vector<std::string> args,
                              std::string_view input) {
  ASSIGN_OR_RETURN(std::string path, FindProgram(tool, package));
  args.insert(args.begin(), path);
  ASSIGN_OR_RETURN(ExecResult r, ExecInNetns(&ns, args, input));
  if (r.exit_code != 0) {
    return absl::InternalError(Cat(tool, " in netns ", ns.description(), " failed (exit ",
                                   r.exit_code, "): ", r.err.empty() ? r.out : r.err));
  }
  return r.out;
}

StatusOr<IptablesState> SaveState(const net::NetnsHandle& ns, Family f) {
  ASSIGN_OR_RETURN(std::string save, RunTool(ns, FamilyTool(f, true), "iptables", {}, ""));
  return ParseIptablesSave(save);
}

Status Restore(const net::NetnsHandle& ns, Family f, const std::string& input) {
  if (input.empty()) return absl::OkStatus();
  AMBIT_LOG(kDebug, "capture", "{} --noflush in {}:\n{}", FamilyTool(f, false), ns.description(),
            input);
  return RunTool(ns, FamilyTool(f, false), "iptables", {"--noflush"}, input).status();
}

Status InstallIptables(const net::NetnsHandle& ns, const RedirectConfig& c) {
  std::vector<Family> families = {Family::kV4};
  if (c.ipv6) families.push_back(Family::kV6);
  for (Family f : families) {
    ASSIGN_OR_RETURN(IptablesState state, SaveState(ns, f));
    RETURN_IF_ERROR(Restore(ns, f, RenderIptablesInstall(c, f, state)));
  }
  return absl::OkStatus();
}

Status RemoveIptables(const net::NetnsHandle& ns, bool ipv6) {
  std::vector<Family> families = {Family::kV4};
  if (ipv6) families.push_back(Family::kV6);
  for (Family f : families) {
    ASSIGN_OR_RETURN(IptablesState state, SaveState(ns, f));
    RETURN_IF_ERROR(Restore(ns, f, RenderIptablesRemove(state)));
  }
  return absl::OkStatus();
}

Status RunNft(const net::NetnsHandle& ns, const std::string& input) {
  AMBIT_LOG(kDebug, "capture", "nft -f - in {}:\n{}", ns.description(), input);
  return RunTool(ns, "nft", "nftables", {"-f", "-"}, input).status();
}

net::PolicyRouting Routing(const RedirectConfig& c, bool ipv6) {
  net::PolicyRouting p;
  p.mark = c.connmark;
  p.mask = c.mark_mask;
  p.ipv6 = ipv6;
  return p;
}

}  // namespace

StatusOr<bool> Ipv6EnabledIn(const net::NetnsHandle& ns) {
  bool enabled = false;
  RETURN_IF_ERROR(net::RunInNetns(ns, [&] {
    enabled = net::Ipv6EnabledHere();
    return absl::OkStatus();
  }));
  return enabled;
}

Status InstallRedirection(const net::NetnsHandle& ns, RuleBackend backend,
                          const RedirectConfig& config) {
  Status s = backend == RuleBackend::kIptables ? InstallIptables(ns, config)
                                               : RunNft(ns, RenderNftInstall(config));
  if (!s.ok()) {
    return Status(s.code(), Cat("installing ", ModeName(config.mode), " rules (",
                                BackendName(backend), "): ", s.message()));
  }
  s = net::AddPolicyRoutingInNetns(ns, Routing(config, config.ipv6));
  if (!s.ok()) return Status(s.code(), Cat("installing policy routing: ", s.message()));
  AMBIT_LOG(kInfo, "capture", "installed {} redirection ({}{}) in {}", ModeName(config.mode),
            BackendName(backend), config.ipv6 ? ", ipv6" : "", ns.description());
  return absl::OkStatus();
}

Status RemoveRedirection(const net::NetnsHandle& ns, RuleBackend backend) {
  ASSIGN_OR_RETURN(bool ipv6, Ipv6EnabledIn(ns));
  Status s = backend == RuleBackend::kIptables ? RemoveIptables(ns, ipv6)
                                               : RunNft(ns, RenderNftRemove());
  if (!s.ok()) {
    return Status(s.code(), Cat("removing rules (", BackendName(backend), "): ", s.message()));
  }
  s = net::RemovePolicyRoutingInNetns(ns, Routing(RedirectConfig{}, ipv6));
  if (!s.ok()) return Status(s.code(), Cat("removing policy routing: ", s.message()));
  AMBIT_LOG(kInfo, "capture", "removed redirection ({}) from {}", BackendName(backend),
            ns.description());
  return absl::OkStatus();
}

}  // namespace ambit::capture
