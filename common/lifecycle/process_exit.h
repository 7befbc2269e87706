// The end of a proxy binary's main() (ambit-agent, ambit-waypoint).
#pragma once

namespace ambit::lifecycle {

// Flushes the async log and stdio, runs LeakSanitizer in ASan builds (the
// app object is still alive, so only memory nothing points to is reported;
// a leak turns exit code 0 into 23), then _exit: worker loops are stopped
// but their connection frames still reference the app's objects, so
// destructors are skipped on purpose.
[[noreturn]] void ExitProcess(int code);

}  // namespace ambit::lifecycle
