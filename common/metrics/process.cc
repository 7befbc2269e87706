#include "common/metrics/process.h"

#include <dirent.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "common/metrics/registry.h"

namespace ambit::metrics {
namespace {

double OpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  int n = 0;
  while (readdir(d)) ++n;
  closedir(d);
  return n - 3;  // ".", ".." and the DIR's own fd
}

double MaxFds() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  return static_cast<double>(rl.rlim_cur);
}

double RssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages = 0, rss = 0;
  int got = std::fscanf(f, "%ld %ld", &pages, &rss);
  std::fclose(f);
  return got == 2 ? static_cast<double>(rss) * static_cast<double>(sysconf(_SC_PAGESIZE)) : 0;
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Bytes malloc has handed out and not had back (all arenas). Against
// process_resident_memory_bytes it separates live data from memory the
// allocator keeps; mallinfo2 walks the arenas, which is fine at scrape rate.
double HeapInUseBytes() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 mi = mallinfo2();
  return static_cast<double>(mi.uordblks + mi.hblkhd);
#else
  return 0;
#endif
}

}  // namespace

void RegisterProcessMetrics(Registry& r) {
  r.AddCallbackGauge("process_open_fds", "Number of open file descriptors.", OpenFds);
  r.AddCallbackGauge("process_max_fds", "Maximum number of open file descriptors.", MaxFds);
  r.AddCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.", RssBytes);
  r.AddCallbackGauge("ambit_heap_in_use_bytes",
                     "Heap bytes allocated and not freed (malloc, all arenas, incl. mmapped blocks).",
                     HeapInUseBytes);
  r.AddCallbackCounter("process_cpu_seconds", "User and system CPU time spent in seconds.", CpuSeconds);
}

}  // namespace ambit::metrics
