// Regression: on the epoll backend a Shutdown queued behind a pending Recv
// on the same fd, so a relay that half-closed toward an app it was also
// reading from never sent the FIN (found by tools/bench with --io epoll).
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

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

}  // namespace

TEST_CASE("shutdown does not wait behind a pending recv on the same fd: epoll") { Run(io::BackendKind::kEpoll); }
TEST_CASE("shutdown does not wait behind a pending recv on the same fd: uring") { Run(io::BackendKind::kUring); }
