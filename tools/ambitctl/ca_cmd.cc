// Placeholder until common/identity lands: the `ca` commands.
#include <cstdio>

#include "tools/ambitctl/commands.h"

namespace ambit::ctl {
void RegisterCaCommands(CLI::App& app) {
  auto* ca = app.add_subcommand("ca", "built-in certificate authority (not yet implemented)");
  ca->callback([] {
    std::fprintf(stderr, "ambitctl ca: not implemented yet\n");
    SetExitCode(1);
  });
}
}  // namespace ambit::ctl
