// The three assertion tiers of common/base/assertions.h, in whichever mode this file and
// assertions.cc were compiled: test_base follows the build (NDEBUG only when b_ndebug says
// so), test_base_ndebug compiles both with -DNDEBUG, so every build checks both behaviours.
// Fatal paths run in a forked child (no death-test framework): the parent checks SIGABRT
// and the FATAL line the child wrote to stderr.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "common/base/assertions.h"
#include "common/base/log.h"

namespace {

#ifdef NDEBUG
constexpr bool kDebug = false;
#else
constexpr bool kDebug = true;
#endif

struct ChildResult {
  bool aborted = false;   // ended by SIGABRT
  bool returned = false;  // `fn` returned, child exited 0
  std::string err;        // what the child wrote to stderr
};

template <typename F>
ChildResult RunInChild(F fn) {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGABRT, SIG_DFL);  // not doctest's crash reporter
    rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::dup2(p[1], STDERR_FILENO);
    ::close(p[0]);
    ::close(p[1]);
    fn();
    _exit(0);
  }
  ::close(p[1]);
  ChildResult r;
  char buf[512];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof(buf))) > 0) r.err.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  r.aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  r.returned = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return r;
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("assertions: AMBIT_ASSERT passes silently when true, aborts in every build when false") {
  int evaluated = 0;
  AMBIT_ASSERT(++evaluated == 1);
  CHECK(evaluated == 1);

  ChildResult r = RunInChild([] { AMBIT_ASSERT(1 + 1 == 3); });
  CHECK(r.aborted);
  CHECK_FALSE(r.returned);
  CHECK_MESSAGE(Contains(r.err, "assertions_test.cc:"), r.err);
  CHECK_MESSAGE(Contains(r.err, "FATAL "), r.err);
  CHECK_MESSAGE(Contains(r.err, "assertion failed: 1 + 1 == 3"), r.err);
}

TEST_CASE("assertions: AMBIT_DEBUG_ASSERT aborts in debug, is compiled out with NDEBUG") {
  int evaluated = 0;
  AMBIT_DEBUG_ASSERT(++evaluated == 1);
  CHECK(evaluated == (kDebug ? 1 : 0));  // NDEBUG: the condition is not even evaluated

  ChildResult r = RunInChild([] { AMBIT_DEBUG_ASSERT(2 < 1); });
  if (kDebug) {
    CHECK(r.aborted);
    CHECK_MESSAGE(Contains(r.err, "assertion failed: 2 < 1"), r.err);
  } else {
    CHECK(r.returned);
    CHECK(r.err.empty());
  }
}

TEST_CASE("assertions: AMBIT_BUG is false and silent when the condition does not hold") {
  const uint64_t before = ambit::base::BugCount();
  int evaluated = 0;
  bool fired = AMBIT_BUG(++evaluated == 2, "never");
  CHECK_FALSE(fired);
  CHECK(evaluated == 1);
  CHECK(ambit::base::BugCount() == before);
}

TEST_CASE("assertions: AMBIT_BUG logs, counts and returns true with NDEBUG; aborts in debug") {
  if (kDebug) {
    const uint64_t before = ambit::base::BugCount();
    ChildResult r = RunInChild([] { (void)AMBIT_BUG(3 > 2, "table index out of range"); });
    CHECK(r.aborted);
    CHECK_MESSAGE(Contains(r.err, "assertion failed: 3 > 2 table index out of range"), r.err);
    CHECK(ambit::base::BugCount() == before);  // the child's count died with it
    return;
  }
  auto& logger = ambit::base::ProcessLogger();
  logger.CaptureForTest(true);
  const uint64_t before = ambit::base::BugCount();
  bool fired = AMBIT_BUG(3 > 2, "table index out of range");
  bool again = AMBIT_BUG(4 > 2, "second");
  auto lines = logger.CapturedForTest();
  logger.CaptureForTest(false);
  CHECK(fired);
  CHECK(again);
  CHECK(ambit::base::BugCount() == before + 2);
  REQUIRE(lines.size() == 2);
  CHECK_MESSAGE(Contains(lines[0], "\terror\tbug\t"), lines[0]);
  CHECK_MESSAGE(Contains(lines[0], "assertions_test.cc:"), lines[0]);
  CHECK_MESSAGE(Contains(lines[0], "bug: 3 > 2 table index out of range"), lines[0]);
  CHECK_MESSAGE(Contains(lines[1], "bug: 4 > 2 second"), lines[1]);
}
