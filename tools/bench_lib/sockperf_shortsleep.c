/* LD_PRELOAD shim for the latency scenario: sockperf 3.7's client sleeps a
 * fixed 2 s after its warm-up messages (sleep(2); not configurable, and
 * --dontwarmup keeps the sleep). 60 runs made the scenario take 4 minutes of
 * which 2 were this sleep. Only that one call is shortened (to 200 ms, still
 * far longer than any queue needs to drain on loopback); every other sleep
 * and the measured phase are untouched. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <unistd.h>

unsigned int sleep(unsigned int seconds) {
  if (seconds == 2) {
    usleep(200000);
    return 0;
  }
  unsigned int (*real)(unsigned int) = (unsigned int (*)(unsigned int))dlsym(RTLD_NEXT, "sleep");
  return real(seconds);
}
