// ambitctl: the operator CLI. Each command family lives in its own file and
// registers its subcommands here.
#include <CLI/CLI.hpp>

#include "tools/ambitctl/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"ambitctl: operate Ambit agents (admin API, CA, in-pod redirection, waypoints)"};
  app.require_subcommand(1);
  ambit::ctl::RegisterCaCommands(app);
  ambit::ctl::RegisterRedirectCommands(app);
  ambit::ctl::RegisterAdminCommands(app);
  ambit::ctl::RegisterWaypointCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return ambit::ctl::ExitCode();
}
