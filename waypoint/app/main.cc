// ambit-waypoint: the Ambit waypoint (L7 proxy), one process per waypoint pod.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>

#include "common/base/log.h"
#include "waypoint/app/flags.h"
#include "waypoint/app/waypoint.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 512 * 1024);  // as the agent (see agent/app/main.cc)
  bool exit_now = false;
  auto flags = ambit::waypoint::ParseWaypointFlags(argc, argv, &exit_now);
  if (!flags.ok()) {
    std::fprintf(stderr, "ambit-waypoint: %s\n", std::string(flags.status().message()).c_str());
    return 2;
  }
  if (exit_now) return 0;
  auto wp = ambit::waypoint::Waypoint::Create(*flags);
  if (!wp.ok()) {
    ambit::base::ProcessLogger().Flush();
    std::fprintf(stderr, "ambit-waypoint: %s\n", wp.status().ToString().c_str());
    return 1;
  }
  int code = (*wp)->Run();
  // Worker loops are stopped; connection frames reference the waypoint's
  // objects, so skip destructor-order hazards at exit (as the agent does).
  ambit::base::ProcessLogger().Flush();
  std::fflush(stdout);
  std::fflush(stderr);
#ifdef __SANITIZE_ADDRESS__
  if (__lsan_do_recoverable_leak_check() != 0 && code == 0) code = 23;
#endif
  _exit(code);
}
