#include <doctest/doctest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/base/log.h"
#include "common/io/cancel.h"
#include "common/io/event.h"
#include "common/io/test_loop.h"
#include "io_test_util.h"

namespace ambit::io {
namespace {

using namespace std::chrono_literals;
using testing::Bytes;
using testing::Sa;

struct Fired {
  int id;
  base::MonoTime at;
  base::MonoTime due;
};

Task<void> SleepAndRecord(Loop& loop, base::Duration d, int id, std::vector<Fired>* out) {
  const base::MonoTime due = loop.Now() + d;
  Status s = co_await loop.SleepUntil(due);
  REQUIRE(s.ok());
  out->push_back({id, loop.Now(), due});
}

// Best (over 5 rounds) of the worst lateness of 6 plain 10 ms epoll_pwait2 sleeps.
base::Duration OsWakeLateness() {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  base::Duration best = std::chrono::hours(1);
  for (int round = 0; round < 5; ++round) {
    base::Duration worst{0};
    for (int i = 0; i < 6; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      timespec ts{0, 10'000'000};
      epoll_event ev;
      (void)::epoll_pwait2(ep, &ev, 1, &ts, nullptr);
      worst = std::max<base::Duration>(worst, std::chrono::steady_clock::now() - t0 - 10ms);
    }
    best = std::min(best, worst);
  }
  ::close(ep);
  return best;
}

// Lateness is measured from each timer's own deadline. The machine is shared and noisy
// (a descheduled thread wakes a scheduler tick late), so an attempt may be repeated: order
// must hold in every attempt, and at least one attempt must have every timer within 2 ms.
// A loop that rounds to milliseconds or waits for the wrong deadline fails every attempt.
TEST_CASE("timers: fire in order within 2 ms on the real clock") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  const std::array<int, 6> ms = {50, 10, 30, 20, 40, 25};
  // Be first in line when the timer expires (ignored without CAP_SYS_NICE).
  const int old_nice = ::getpriority(PRIO_PROCESS, 0);
  (void)::setpriority(PRIO_PROCESS, 0, -10);
  bool precise = false;
  base::Duration best = std::chrono::hours(1);
  for (int attempt = 0; attempt < 5 && !precise; ++attempt) {
    std::vector<Fired> fired;
    for (int d : ms) loop->Spawn(SleepAndRecord(*loop, std::chrono::milliseconds(d), d, &fired));
    REQUIRE(loop->RunUntil([&] { return fired.size() == ms.size(); }, 5s));
    base::Duration worst{0};
    for (size_t i = 0; i < fired.size(); ++i) {
      if (i > 0) CHECK(fired[i - 1].id < fired[i].id);
      auto late = fired[i].at - fired[i].due;
      CHECK(late >= base::Duration(0));
      worst = std::max(worst, late);
    }
    MESSAGE("attempt ", attempt, ": worst lateness ",
            std::chrono::duration_cast<std::chrono::microseconds>(worst).count(), " us");
    precise = worst < 2ms;
    best = std::min(best, worst);
  }
  if (!precise) {
    // The machine itself may not wake anyone within 2 ms right now (host steal, load).
    // Measure plain epoll_pwait2 sleeps: the loop must add less than 2 ms to that floor.
    base::Duration os = OsWakeLateness();
    MESSAGE("loop best worst lateness ", std::chrono::duration_cast<std::chrono::microseconds>(best).count(),
            " us; plain epoll_pwait2 floor ",
            std::chrono::duration_cast<std::chrono::microseconds>(os).count(), " us");
    precise = best < os + 2ms;
  }
  (void)::setpriority(PRIO_PROCESS, 0, old_nice);
  CHECK(precise);
}

// Kernels before 5.11 (and valgrind) have no epoll_pwait2: the epoll loop must
// fall back to epoll_wait and keep its timers, not spin on ENOSYS. A child
// process gets ENOSYS for that one syscall from a seccomp filter.
TEST_CASE("epoll: without epoll_pwait2 the loop falls back to epoll_wait") {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_epoll_pwait2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(10);
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) ::_exit(11);
    epoll_event ev{};
    timespec zero{};
    if (::epoll_pwait2(-1, &ev, 1, &zero, nullptr) != -1 || errno != ENOSYS) ::_exit(12);
    base::ProcessLogger().CaptureForTest(true);
    auto loop = testing::MakeLoop(BackendKind::kEpoll);
    std::vector<Fired> fired;
    const auto t0 = std::chrono::steady_clock::now();
    loop->Spawn(SleepAndRecord(*loop, 200ms, 1, &fired));
    loop->Spawn(SleepAndRecord(*loop, 10ms, 0, &fired));
    if (!loop->RunUntil([&] { return fired.size() == 2; }, 5s)) ::_exit(13);
    const auto took = std::chrono::steady_clock::now() - t0;
    if (fired[0].id != 0 || fired[1].id != 1) ::_exit(14);
    for (const Fired& f : fired) {
      if (f.at < f.due) ::_exit(15);  // never early (rounded up to whole ms)
    }
    if (took > 2s) ::_exit(16);
    // It waited: a loop spinning on the failed wait logs an error per turn;
    // the fallback logs one info line.
    size_t errors = 0;
    for (const auto& l : base::ProcessLogger().CapturedForTest()) {
      if (l.find("error") != std::string::npos) ++errors;
    }
    if (errors > 0) ::_exit(17);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // 17: it spun, logging errors
}

TEST_CASE("timers: fire exactly when simulated time is advanced") {
  FOR_EACH_BACKEND(kind);
  TestLoop t(kind);
  std::vector<Fired> fired;
  const base::MonoTime start = t.clock().Now();
  t.loop().Spawn(SleepAndRecord(t.loop(), 30s, 30, &fired));
  t.loop().Spawn(SleepAndRecord(t.loop(), 10s, 10, &fired));
  t.loop().Spawn(SleepAndRecord(t.loop(), 10s, 11, &fired));  // same deadline: FIFO
  t.RunUntilIdle();
  t.Advance(10s - 1ns);
  CHECK(fired.empty());
  t.Advance(1ns);
  REQUIRE(fired.size() == 2);
  CHECK(fired[0].id == 10);
  CHECK(fired[1].id == 11);
  CHECK(fired[0].at == start + 10s);
  t.Advance(20s);
  REQUIRE(fired.size() == 3);
  CHECK(fired[2].at == start + 30s);
}

TEST_CASE("post: 4 threads x 25,000 messages, none lost, per-thread order kept") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25'000;
  std::array<int, kThreads> next{};
  int received = 0;
  int out_of_order = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        loop->Post([&, t, i] {
          if (next[t] != i) ++out_of_order;
          next[t] = i + 1;
          ++received;
        });
      }
    });
  }
  bool all = loop->RunUntil([&] { return received == kThreads * kPerThread; }, 30s);
  for (auto& th : threads) th.join();
  CHECK(all);
  CHECK(received == kThreads * kPerThread);
  CHECK(out_of_order == 0);
}

TEST_CASE("post and stop from another thread end Run()") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  std::atomic<bool> ran{false};
  std::thread th([&] {
    loop->Post([&] { ran = true; });
    loop->Stop();
  });
  loop->Run();  // returns only because of Stop()
  th.join();
  loop->RunUntil([&] { return ran.load(); }, 5s);
  CHECK(ran.load());
}

TEST_CASE("fault injection: failing io_uring setup selects epoll and logs it") {
  auto& logger = base::ProcessLogger();
  logger.CaptureForTest(true);
  auto loop = Loop::Create({.backend = BackendKind::kAuto, .name = "fallback",
                            .fail_uring_setup_for_test = true});
  auto lines = logger.CapturedForTest();
  logger.CaptureForTest(false);
  REQUIRE(loop.ok());
  CHECK((*loop)->backend_kind() == BackendKind::kEpoll);
  bool logged = false;
  for (const auto& l : lines) {
    if (l.find("loop fallback: using epoll backend (io_uring unavailable: "
               "io_uring_queue_init: Operation not permitted") != std::string::npos &&
        l.find("\tinfo\tio\t") != std::string::npos) {
      logged = true;
    }
  }
  CHECK_MESSAGE(logged, "log lines: ", lines.size());
  // Asking for io_uring explicitly is an error, not a silent fallback.
  auto strict = Loop::Create({.backend = BackendKind::kUring, .fail_uring_setup_for_test = true});
  REQUIRE_FALSE(strict.ok());
  CHECK(strict.status().code() == absl::StatusCode::kPermissionDenied);
  // Auto without the fault picks io_uring on this kernel.
  auto normal = Loop::Create({});
  REQUIRE(normal.ok());
  CHECK((*normal)->backend_kind() == BackendKind::kUring);
}

Task<Status> CloseFd(Loop& loop, int fd) { co_return co_await loop.Close(fd); }

struct Pair {
  int a = -1;
  int b = -1;
};
Pair SocketPair() {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  return {fds[0], fds[1]};
}

Task<Status> RecvInto(Loop& loop, int fd, OpOptions o, std::string* got) {
  std::array<std::byte, 64> buf;
  StatusOr<size_t> n = co_await loop.Recv(fd, buf, o);
  if (!n.ok()) co_return n.status();
  got->assign(reinterpret_cast<const char*>(buf.data()), *n);
  co_return absl::OkStatus();
}

TEST_CASE("recv: data, EOF and timeout") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  Pair p = SocketPair();
  std::string got;
  REQUIRE(::send(p.b, "hello", 5, 0) == 5);
  CHECK(loop->BlockOn(RecvInto(*loop, p.a, {}, &got)).ok());
  CHECK(got == "hello");

  auto start = std::chrono::steady_clock::now();
  Status s = loop->BlockOn(RecvInto(*loop, p.a, {.timeout = 50ms}, &got));
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(s.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(std::string(s.message()) == "recv fd " + std::to_string(p.a) + " timed out after 50ms");
  CHECK(took >= 50ms);
  CHECK(took < 1s);
  CHECK(loop->ops_in_flight() == 0);

  ::shutdown(p.b, SHUT_WR);
  got = "x";
  CHECK(loop->BlockOn(RecvInto(*loop, p.a, {.timeout = 5s}, &got)).ok());
  CHECK(got.empty());  // 0 bytes = EOF
  CHECK(loop->BlockOn(CloseFd(*loop, p.a)).ok());
  CHECK(loop->BlockOn(CloseFd(*loop, p.b)).ok());
}

TEST_CASE("recv timeout under simulated time fires exactly at the deadline") {
  FOR_EACH_BACKEND(kind);
  TestLoop t(kind);
  Pair p = SocketPair();
  std::string got;
  std::optional<Status> result;
  t.loop().Spawn([](Loop& l, int fd, std::string* g, std::optional<Status>* r) -> Task<void> {
    r->emplace(co_await RecvInto(l, fd, {.timeout = 5s}, g));
  }(t.loop(), p.a, &got, &result));
  t.RunUntilIdle();
  t.Advance(5s - 1ms);
  CHECK_FALSE(result.has_value());
  t.Advance(1ms);
  REQUIRE(t.RunUntil([&] { return result.has_value(); }));
  CHECK(result->code() == absl::StatusCode::kDeadlineExceeded);
  ::close(p.a);
  ::close(p.b);
}

TEST_CASE("cancel: pending recv completes with Cancelled after the kernel let go") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  Pair p = SocketPair();
  CancelScope scope;
  std::string got;
  std::optional<Status> result;
  loop->Spawn([](Loop& l, int fd, CancelScope* sc, std::string* g,
                 std::optional<Status>* r) -> Task<void> {
    r->emplace(co_await RecvInto(l, fd, {.scope = sc}, g));
  }(*loop, p.a, &scope, &got, &result));
  loop->RunOnce(0ms);
  loop->RunOnce(0ms);
  CHECK(scope.outstanding() == 1);
  CHECK_FALSE(result.has_value());
  scope.Cancel();
  CHECK_FALSE(result.has_value());  // never synchronous: the kernel must answer first
  REQUIRE(loop->RunUntil([&] { return result.has_value(); }, 5s));
  CHECK(result->code() == absl::StatusCode::kCancelled);
  CHECK(std::string(result->message()) == "recv fd " + std::to_string(p.a) + " cancelled");
  CHECK(scope.outstanding() == 0);
  CHECK(loop->ops_in_flight() == 0);
  // New operations on a cancelled scope fail at once.
  CHECK(loop->BlockOn(RecvInto(*loop, p.a, {.scope = &scope}, &got)).code() ==
        absl::StatusCode::kCancelled);
  // The socket still works: no data was lost to the cancelled recv.
  REQUIRE(::send(p.b, "after", 5, 0) == 5);
  CHECK(loop->BlockOn(RecvInto(*loop, p.a, {}, &got)).ok());
  CHECK(got == "after");
  ::close(p.a);
  ::close(p.b);
}

Task<Status> AcceptOne(Loop& loop, int fd, OpOptions o) {
  StatusOr<Accepted> a = co_await loop.Accept(fd, o);
  if (!a.ok()) co_return a.status();
  ::close(a->fd);
  co_return absl::OkStatus();
}

TEST_CASE("cancel: pending accept completes with Cancelled") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  sockaddr_in addr;
  int lfd = testing::Listener(&addr);
  CancelScope scope;
  std::optional<Status> result;
  loop->Spawn([](Loop& l, int fd, CancelScope* sc, std::optional<Status>* r) -> Task<void> {
    r->emplace(co_await AcceptOne(l, fd, {.scope = sc}));
  }(*loop, lfd, &scope, &result));
  loop->RunOnce(0ms);
  loop->RunOnce(0ms);
  REQUIRE(scope.outstanding() == 1);
  scope.Cancel();
  REQUIRE(loop->RunUntil([&] { return result.has_value(); }, 5s));
  CHECK(result->code() == absl::StatusCode::kCancelled);
  CHECK(scope.outstanding() == 0);
  ::close(lfd);
}

TEST_CASE("connect: refused, timeout and cancel on a full backlog") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  sockaddr_in addr;
  {  // nothing listens on a closed port
    int lfd = testing::Listener(&addr);
    ::close(lfd);
    int fd = testing::TcpSocket();
    Status s = loop->BlockOn([](Loop& l, int f, sockaddr_in a) -> Task<Status> {
      co_return co_await l.Connect(f, Sa(a), sizeof(a), {.timeout = 2s});
    }(*loop, fd, addr));
    CHECK(s.code() == absl::StatusCode::kUnavailable);  // ECONNREFUSED
    CHECK(std::string(s.message()).find("Connection refused") != std::string::npos);
    ::close(fd);
  }
  // A listener that never accepts: once its queue is full, SYNs are dropped and
  // connects stay pending.
  int lfd = testing::Listener(&addr, 0);
  std::vector<int> fds;
  Status last;
  for (int i = 0; i < 8 && last.code() != absl::StatusCode::kDeadlineExceeded; ++i) {
    fds.push_back(testing::TcpSocket());
    last = loop->BlockOn([](Loop& l, int f, sockaddr_in a) -> Task<Status> {
      co_return co_await l.Connect(f, Sa(a), sizeof(a), {.timeout = 100ms});
    }(*loop, fds.back(), addr));
  }
  REQUIRE(last.code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(std::string(last.message()).find("connect fd") == 0);

  CancelScope scope;
  std::optional<Status> result;
  fds.push_back(testing::TcpSocket());
  loop->Spawn([](Loop& l, int f, sockaddr_in a, CancelScope* sc,
                 std::optional<Status>* r) -> Task<void> {
    r->emplace(co_await l.Connect(f, Sa(a), sizeof(a), {.scope = sc}));
  }(*loop, fds.back(), addr, &scope, &result));
  loop->RunOnce(0ms);
  loop->RunOnce(0ms);
  REQUIRE(scope.outstanding() == 1);
  scope.Cancel();
  REQUIRE(loop->RunUntil([&] { return result.has_value(); }, 5s));
  CHECK(result->code() == absl::StatusCode::kCancelled);
  for (int fd : fds) ::close(fd);
  ::close(lfd);
}

TEST_CASE("cancel scope covers sleeps and event waits") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  CancelScope scope;
  Event ev(*loop);
  std::optional<Status> slept, waited;
  loop->Spawn([](Loop& l, CancelScope* sc, std::optional<Status>* r) -> Task<void> {
    r->emplace(co_await l.Sleep(1h, {.scope = sc}));
  }(*loop, &scope, &slept));
  loop->Spawn([](Event& e, CancelScope* sc, std::optional<Status>* r) -> Task<void> {
    r->emplace(co_await e.Wait({.scope = sc}));
  }(ev, &scope, &waited));
  loop->RunOnce(0ms);
  CHECK(scope.outstanding() == 2);
  scope.Cancel();
  REQUIRE(loop->RunUntil([&] { return slept && waited; }, 5s));
  CHECK(slept->code() == absl::StatusCode::kCancelled);
  CHECK(waited->code() == absl::StatusCode::kCancelled);
  ev.Set();
  CHECK(loop->BlockOn([](Event& e) -> Task<Status> { co_return co_await e.Wait(); }(ev)).ok());
}

Task<Status> WritevRoundTrip(Loop& loop, int a, int b, std::string* got) {
  std::string x = "scatter-", y = "gather";
  iovec iov[2] = {{x.data(), x.size()}, {y.data(), y.size()}};
  StatusOr<size_t> n = co_await loop.Writev(a, iov);
  if (!n.ok()) co_return n.status();
  if (*n != x.size() + y.size()) co_return absl::InternalError("short writev");
  CO_RETURN_IF_ERROR(co_await loop.Shutdown(a, SHUT_WR));
  std::array<std::byte, 64> buf;
  std::span<std::byte> rest(buf);
  size_t total = 0;
  for (;;) {
    StatusOr<size_t> r = co_await loop.Recv(b, rest.subspan(total), {.timeout = 5s});
    if (!r.ok()) co_return r.status();
    if (*r == 0) break;
    total += *r;
  }
  got->assign(reinterpret_cast<const char*>(buf.data()), total);
  co_return absl::OkStatus();
}

TEST_CASE("writev, shutdown and close") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  Pair p = SocketPair();
  std::string got;
  Status s = loop->BlockOn(WritevRoundTrip(*loop, p.a, p.b, &got));
  CHECK_MESSAGE(s.ok(), s.ToString());
  CHECK(got == "scatter-gather");
  CHECK(loop->BlockOn(CloseFd(*loop, p.a)).ok());
  CHECK(loop->BlockOn(CloseFd(*loop, p.b)).ok());
  Status bad = loop->BlockOn(SendAll(*loop, p.a, Bytes("x")));
  CHECK(bad.code() == absl::StatusCode::kFailedPrecondition);  // EBADF
}

}  // namespace
}  // namespace ambit::io
