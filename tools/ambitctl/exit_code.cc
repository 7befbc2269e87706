#include "tools/ambitctl/commands.h"

namespace ambit::ctl {
namespace {
int g_exit_code = 0;  // ambitctl is single-threaded; set by the one command run
}  // namespace
void SetExitCode(int code) { g_exit_code = code; }
int ExitCode() { return g_exit_code; }
}  // namespace ambit::ctl
