// Three assertion tiers (STYLE.md rule 12):
//   AMBIT_ASSERT(cond)        always fatal, release and debug.
//   AMBIT_DEBUG_ASSERT(cond)  fatal in debug builds, compiled out with NDEBUG.
//   AMBIT_BUG(cond, msg)      "cannot happen": logged and counted in release,
//                             fatal in debug. Returns true when it fired.
// Untrusted input (peers, config, control plane) is never asserted on.
#pragma once

#include <atomic>
#include <cstdint>

namespace ambit::base {

[[noreturn]] void AssertFail(const char* expr, const char* file, int line, const char* msg);
// Logs (and in debug aborts); returns true so it can be used in conditions.
bool BugFired(const char* expr, const char* file, int line, const char* msg);
// Number of AMBIT_BUG firings in this process (exported as a metric).
uint64_t BugCount();

}  // namespace ambit::base

#define AMBIT_ASSERT(cond)                                                    \
  do {                                                                        \
    if (!(cond)) [[unlikely]]                                                 \
      ::ambit::base::AssertFail(#cond, __FILE__, __LINE__, "");               \
  } while (0)

#ifdef NDEBUG
#define AMBIT_DEBUG_ASSERT(cond) \
  do {                           \
  } while (0)
#else
#define AMBIT_DEBUG_ASSERT(cond) AMBIT_ASSERT(cond)
#endif

#define AMBIT_BUG(cond, msg) \
  ((cond) ? ::ambit::base::BugFired(#cond, __FILE__, __LINE__, (msg)) : false)
