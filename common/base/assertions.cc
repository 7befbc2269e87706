#include "common/base/assertions.h"

#include <cstdio>
#include <cstdlib>

#include "common/base/log.h"

namespace ambit::base {
namespace {
std::atomic<uint64_t> g_bug_count{0};  // process-wide by nature, like errno
}  // namespace

void AssertFail(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "FATAL %s:%d: assertion failed: %s %s\n", file, line, expr, msg);
  std::fflush(stderr);
  std::abort();
}

bool BugFired(const char* expr, const char* file, int line, const char* msg) {
  g_bug_count.fetch_add(1, std::memory_order_relaxed);
#ifdef NDEBUG
  AMBIT_LOG(kError, "bug", "{}:{}: bug: {} {}", file, line, expr, msg);
#else
  AssertFail(expr, file, line, msg);
#endif
  return true;
}

uint64_t BugCount() { return g_bug_count.load(std::memory_order_relaxed); }

}  // namespace ambit::base
