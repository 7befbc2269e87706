// Command families of ambitctl. Each Register* adds subcommands to `app`;
// a command's callback stores its process exit code with SetExitCode().
#pragma once

#include <CLI/CLI.hpp>

namespace ambit::ctl {

void RegisterCaCommands(CLI::App& app);        // ca_cmd.cc: ca init | ca issue
void RegisterRedirectCommands(CLI::App& app);  // redirect_cmd.cc: redirect install | remove
// admin_cmd.cc: workloads | services | policies | certificates | connections | all | log
void RegisterAdminCommands(CLI::App& app);
// waypoint_cmd.cc: waypoint generate | apply (the charts/ambit-waypoint manifests)
void RegisterWaypointCommands(CLI::App& app);

void SetExitCode(int code);
int ExitCode();

}  // namespace ambit::ctl
