// Regression: on the epoll backend a Shutdown queued behind a pending Recv
// on the same fd, so a relay that half-closed toward an app it was also
// reading from never sent the FIN (found by tools/bench with --io epoll).
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "common/io/cancel.h"
#include "common/io/loop.h"

using namespace ambit;
using namespace std::chrono_literals;

namespace {

io::Task<void> RecvPending(io::Loop& loop, int fd, io::CancelScope* scope, bool* done) {
  std::byte b[16];
  (void)co_await loop.Recv(fd, b, {.scope = scope});
  *done = true;
}

io::Task<void> ShutdownWr(io::Loop& loop, int fd, Status* out, bool* done) {
  *out = co_await loop.Shutdown(fd, SHUT_WR);
  *done = true;
}

void Run(io::BackendKind kind) {
  auto loop = io::Loop::Create({.backend = kind, .name = "shut"});
  REQUIRE(loop.ok());
  io::Loop& l = **loop;
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
  io::CancelScope scope;
  bool recv_done = false;
  l.Spawn(RecvPending(l, sv[0], &scope, &recv_done));
  l.RunOnce(std::chrono::milliseconds(10));  // the recv is now waiting
  Status st;
  bool shut = false;
  l.Spawn(ShutdownWr(l, sv[0], &st, &shut));
  REQUIRE(l.RunUntil([&] { return shut; }, 2s));  // it used to wait forever behind the recv
  CHECK(st.ok());
  char c;
  CHECK(read(sv[1], &c, 1) == 0);  // the peer sees EOF right away
  CHECK_FALSE(recv_done);
  scope.Cancel();
  CHECK(l.RunUntil([&] { return recv_done; }, 2s));
  close(sv[0]);
  close(sv[1]);
}

// io-wq helper threads this thread's rings started ("iou-wrk-<tid>").
int IoWorkers(long tid) {
  const std::string want = "iou-wrk-" + std::to_string(tid);
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(e.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name == want) ++n;
  }
  return n;
}

// A fresh thread has no io-wq yet; shutdown must not start one (IORING_OP_SHUTDOWN
// always runs on an io-wq worker: a wake-up and two context switches per connection).
void ShutdownInline(int* workers, bool* ok) {
  auto loop = io::Loop::Create({.backend = io::BackendKind::kUring, .name = "shut-inline"});
  if (!loop.ok()) return;
  io::Loop& l = **loop;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) return;
  bool done = false;
  Status st;
  for (int i = 0; i < 20; ++i) {
    done = false;
    l.Spawn(ShutdownWr(l, sv[0], &st, &done));
    if (!l.RunUntil([&] { return done; }, 2s) || !st.ok()) break;
  }
  char c;
  *ok = done && st.ok() && read(sv[1], &c, 1) == 0;
  *workers = IoWorkers(syscall(SYS_gettid));
  close(sv[0]);
  close(sv[1]);
}

}  // namespace

TEST_CASE("uring shutdown completes inline, without an io-wq worker") {
  int workers = -1;
  bool ok = false;
  std::thread t(ShutdownInline, &workers, &ok);
  t.join();
  CHECK(ok);
  CHECK(workers == 0);
}

TEST_CASE("shutdown does not wait behind a pending recv on the same fd: epoll") { Run(io::BackendKind::kEpoll); }
TEST_CASE("shutdown does not wait behind a pending recv on the same fd: uring") { Run(io::BackendKind::kUring); }
