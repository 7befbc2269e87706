// WaitReadable (readiness without a buffer), on both backends. The block pool
// behind PooledBuffer is tested in tests/unit/buffer.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "common/io/cancel.h"
#include "io_test_util.h"

namespace ambit::io {
namespace {

using namespace std::chrono_literals;

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    a = fds[0];
    b = fds[1];
  }
  ~Pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

TEST_CASE("WaitReadable: resumes only once data is there, consumes nothing") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  Pair p;
  bool ready = false;
  Status st;
  loop->Spawn([](Loop& l, int fd, bool* r, Status* s) -> Task<void> {
    *s = co_await l.WaitReadable(fd);
    *r = true;
  }(*loop, p.a, &ready, &st));
  loop->RunOnce(20ms);
  loop->RunOnce(20ms);
  CHECK_FALSE(ready);
  REQUIRE(::send(p.b, "xyz", 3, 0) == 3);
  REQUIRE(loop->RunUntil([&] { return ready; }, 2s));
  CHECK(st.ok());
  char buf[8];
  CHECK(::recv(p.a, buf, sizeof(buf), MSG_DONTWAIT) == 3);  // the bytes are still queued
}

TEST_CASE("WaitReadable: EOF counts as readable; timeout and cancel report as such") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  {
    Pair p;
    ::shutdown(p.b, SHUT_WR);
    Status st = loop->BlockOn([](Loop& l, int fd) -> Task<Status> {
      co_return co_await l.WaitReadable(fd, {.timeout = 2s});
    }(*loop, p.a));
    CHECK(st.ok());
  }
  {
    Pair p;
    Status st = loop->BlockOn([](Loop& l, int fd) -> Task<Status> {
      co_return co_await l.WaitReadable(fd, {.timeout = 30ms});
    }(*loop, p.a));
    CHECK(absl::IsDeadlineExceeded(st));
  }
  {
    Pair p;
    CancelScope scope;
    Status st;
    bool done = false;
    loop->Spawn([](Loop& l, int fd, CancelScope* sc, Status* s, bool* d) -> Task<void> {
      *s = co_await l.WaitReadable(fd, {.scope = sc});
      *d = true;
    }(*loop, p.a, &scope, &st, &done));
    loop->RunOnce(10ms);
    scope.Cancel();
    REQUIRE(loop->RunUntil([&] { return done; }, 2s));
    CHECK(absl::IsCancelled(st));
  }
}

}  // namespace
}  // namespace ambit::io
