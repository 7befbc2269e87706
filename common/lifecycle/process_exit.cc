#include "common/lifecycle/process_exit.h"

#include <unistd.h>

#include <cstdio>

#include "common/base/log.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

namespace ambit::lifecycle {

void ExitProcess(int code) {
  base::ProcessLogger().Flush();
  std::fflush(stdout);
  std::fflush(stderr);
#ifdef __SANITIZE_ADDRESS__
  if (__lsan_do_recoverable_leak_check() != 0 && code == 0) code = 23;
#endif
  _exit(code);
}

}  // namespace ambit::lifecycle
