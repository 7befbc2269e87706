// Placeholder until agent/capture lands: the `redirect` commands.
#include <cstdio>

#include "tools/ambitctl/commands.h"

namespace ambit::ctl {
void RegisterRedirectCommands(CLI::App& app) {
  auto* r = app.add_subcommand("redirect", "in-pod traffic redirection (not yet implemented)");
  r->callback([] {
    std::fprintf(stderr, "ambitctl redirect: not implemented yet\n");
    SetExitCode(1);
  });
}
}  // namespace ambit::ctl
