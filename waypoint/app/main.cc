// ambit-waypoint: the Ambit waypoint (L7 proxy), one process per waypoint pod.
#include <malloc.h>

#include <cstdio>

#include "common/base/log.h"
#include "common/lifecycle/process_exit.h"
#include "waypoint/app/flags.h"
#include "waypoint/app/waypoint.h"

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
  ambit::lifecycle::ExitProcess((*wp)->Run());
}
