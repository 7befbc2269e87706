// Echo server and clients on loopback: 10,000 concurrent connections, each sending 64 KiB of
// pseudo-random bytes (16 KiB under sanitizers) that are verified byte for byte. The server runs in a forked child with
// its own Loop on the same backend, so each process holds 10,000 fds (not 20,000 in one).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>
#include <vector>

#include "common/io/acceptor.h"
#include "common/io/cancel.h"
#include "common/io/event.h"
#include "io_test_util.h"

namespace ambit::io {
namespace {

using namespace std::chrono_literals;
using testing::Sa;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// Sanitized builds are ~10x slower per byte; the point here is 10,000 concurrent
// connections, so they carry 16 KiB each (still four chunks, verified).
constexpr size_t kPayload = 16 * 1024;
#else
constexpr size_t kPayload = 64 * 1024;
#endif
// Generous: CI runs this next to other sanitized suites on 2 cores.
constexpr auto kDeadline = std::chrono::seconds(120);
constexpr size_t kChunk = 4096;

// Deterministic byte stream per connection (xorshift64*).
struct Stream {
  uint64_t s;
  explicit Stream(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  std::byte Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<std::byte>((s * 0x2545F4914F6CDD1Dull) >> 56);
  }
};

// Server side; lives in a forked child so that each process holds one fd per connection.
struct ServerSide {
  Loop* loop;
  size_t n;
  size_t accepted = 0;
  size_t done = 0;
  size_t failed = 0;
  bool accept_ended = false;
  std::string first_error;
  void Fail(const Status& s) {
    if (first_error.empty()) first_error = s.ToString();
    ++failed;
  }
};

// Client side; runs in the test process.
struct Shared {
  Loop* loop;
  sockaddr_in addr;
  size_t n;
  size_t connected = 0;
  size_t connecting = 0;
  size_t verified = 0;
  size_t failed = 0;
  Event* all_connected;
  std::string first_error;
  void Fail(const Status& s) {
    if (first_error.empty()) first_error = s.ToString();
    ++failed;
  }
};

Task<void> EchoConn(ServerSide& sv, int fd) {
  std::array<std::byte, kChunk> buf;
  for (;;) {
    StatusOr<size_t> n = co_await sv.loop->Recv(fd, buf, {.timeout = 30s});
    if (!n.ok()) {
      sv.Fail(n.status());
      break;
    }
    if (*n == 0) break;
    Status s = co_await SendAll(*sv.loop, fd, std::span(buf.data(), *n), {.timeout = 30s});
    if (!s.ok()) {
      sv.Fail(s);
      break;
    }
  }
  (void)co_await sv.loop->Close(fd);
  ++sv.done;
}

Task<void> Server(ServerSide& sv, Acceptor& acc) {
  for (size_t i = 0; i < sv.n; ++i) {
    StatusOr<Accepted> a = co_await acc.Next({.timeout = 30s});
    if (!a.ok()) {
      sv.Fail(a.status());
      break;
    }
    ++sv.accepted;
    sv.loop->Spawn(EchoConn(sv, a->fd));
  }
  sv.accept_ended = true;
}

// What the server child reports to the test process through a pipe.
struct ServerReport {
  size_t accepted = 0;
  size_t done = 0;
  size_t failed = 0;
  bool finished = false;
  char first_error[256] = {};
};

// Child process: its own Loop on the same backend, accepting n connections on lfd and
// echoing each until EOF. Never returns; no doctest macros here (they belong to the parent).
[[noreturn]] void RunServerChild(BackendKind kind, int lfd, size_t n, int report_fd) {
  ServerReport rep;
  // Declared before the loop: the loop's teardown resumes echo coroutines that
  // still refer to it.
  ServerSide sv{.loop = nullptr, .n = n};
  {
    auto loop = Loop::Create({.backend = kind, .name = "echo-server"});
    if (!loop.ok() || (*loop)->backend_kind() != kind) {
      std::snprintf(rep.first_error, sizeof(rep.first_error), "server loop: %s",
                    loop.ok() ? "wrong backend" : loop.status().ToString().c_str());
    } else {
      sv.loop = loop->get();
      Acceptor acc(**loop, lfd);
      (*loop)->Spawn(Server(sv, acc));
      rep.finished = (*loop)->RunUntil(
          [&] { return sv.accept_ended && sv.done == sv.accepted; }, kDeadline);
      (*loop)->BlockOn(acc.Close());
      rep.accepted = sv.accepted;
      rep.done = sv.done;
      rep.failed = sv.failed;
      std::snprintf(rep.first_error, sizeof(rep.first_error), "%s", sv.first_error.c_str());
    }
  }
  ssize_t w = ::write(report_fd, &rep, sizeof(rep));
  _exit(w == static_cast<ssize_t>(sizeof(rep)) && rep.finished && rep.failed == 0 &&
                rep.accepted == n
            ? 0
            : 1);
}

// Owns the forked server; kills it if the test leaves early (a failed REQUIRE).
struct ServerChild {
  pid_t pid = -1;
  int report_fd = -1;
  ~ServerChild() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (report_fd >= 0) ::close(report_fd);
  }
  // Waits up to `limit` for the child to exit; returns its wait status, or -1 (then kills it).
  int Wait(std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        pid = -1;
        return status;
      }
      if (r < 0 || std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(10ms);
    }
  }
};

Task<Status> SendPayload(Shared& sh, int fd, uint64_t seed) {
  Stream gen(seed);
  std::array<std::byte, kChunk> buf;
  for (size_t off = 0; off < kPayload; off += kChunk) {
    for (auto& b : buf) b = gen.Next();
    CO_RETURN_IF_ERROR(co_await SendAll(*sh.loop, fd, buf, {.timeout = 30s}));
  }
  co_return co_await sh.loop->Shutdown(fd, SHUT_WR);
}

Task<Status> VerifyEcho(Shared& sh, int fd, uint64_t seed) {
  Stream expect(seed);
  std::array<std::byte, kChunk> buf;
  size_t total = 0;
  for (;;) {
    StatusOr<size_t> n = co_await sh.loop->Recv(fd, buf, {.timeout = 30s});
    if (!n.ok()) co_return n.status();
    if (*n == 0) break;
    for (size_t i = 0; i < *n; ++i) {
      if (buf[i] != expect.Next()) {
        co_return absl::DataLossError("echo mismatch at byte " + std::to_string(total + i));
      }
    }
    total += *n;
  }
  if (total != kPayload) co_return absl::DataLossError("echo length " + std::to_string(total));
  co_return absl::OkStatus();
}

Task<void> Client(Shared& sh, uint64_t seed) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ++sh.connecting;
  Status c = fd < 0 ? absl::ResourceExhaustedError("socket()")
                    : co_await sh.loop->Connect(fd, Sa(sh.addr), sizeof(sh.addr),
                                                {.timeout = 30s});
  --sh.connecting;
  if (!c.ok()) {
    sh.Fail(c);
    if (fd >= 0) (void)co_await sh.loop->Close(fd);
    co_return;
  }
  if (++sh.connected == sh.n) sh.all_connected->Set();
  Status w = co_await sh.all_connected->Wait({.timeout = 30s});  // all N open at once
  auto [sent, echoed] = co_await WhenAll(SendPayload(sh, fd, seed), VerifyEcho(sh, fd, seed));
  if (!w.ok()) sh.Fail(w);
  if (!sent.ok()) sh.Fail(sent);
  if (!echoed.ok()) {
    sh.Fail(echoed);
  } else if (w.ok() && sent.ok()) {
    ++sh.verified;
  }
  (void)co_await sh.loop->Close(fd);
}

// Starts clients, keeping at most 512 connects in flight so the SYN queue never overflows.
Task<void> Launch(Shared& sh) {
  for (size_t i = 0; i < sh.n; ++i) {
    while (sh.connecting >= 512) (void)co_await sh.loop->Sleep(1ms);
    sh.loop->Spawn(Client(sh, i));
  }
}

constexpr size_t kConnections = 10'000;

// Client and server run in separate processes, so each needs kConnections fds plus a few.
void RequireFdBudget() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  const size_t reserve = 64;  // loop, listener, pipe, doctest, stdio
  REQUIRE_MESSAGE(rl.rlim_cur >= kConnections + reserve,
                  "RLIMIT_NOFILE hard limit " << rl.rlim_max << " is below "
                                              << kConnections + reserve
                                              << " (one fd per connection per process)");
}

TEST_CASE("echo: 10,000 concurrent loopback connections x 64 KiB, verified") {
  FOR_EACH_BACKEND(kind);
  RequireFdBudget();
  const size_t n = kConnections;
  sockaddr_in addr{};
  int lfd = testing::Listener(&addr);
  int report[2];
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  std::fflush(nullptr);
  auto start = std::chrono::steady_clock::now();
  ServerChild child;
  child.pid = ::fork();
  REQUIRE(child.pid >= 0);
  if (child.pid == 0) {
    ::close(report[0]);
    RunServerChild(kind, lfd, n, report[1]);
  }
  child.report_fd = report[0];
  ::close(report[1]);
  ::close(lfd);  // the child accepts; the test process only connects

  auto loop = testing::MakeLoop(kind);
  Event all_connected(*loop);
  Shared sh{.loop = loop.get(), .addr = addr, .n = n, .all_connected = &all_connected};
  loop->Spawn(Launch(sh));
  bool done = loop->RunUntil([&] { return sh.verified + sh.failed >= n; }, kDeadline);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int status = child.Wait(30s);
  ServerReport rep;
  ssize_t got = ::read(child.report_fd, &rep, sizeof(rep));
  std::printf("echo test [%s]: %zu connections, %zu verified, %zu failed, %.2f s, %.2f GB echoed; "
              "server process: %zu accepted, %zu closed, %zu failed\n",
              loop->backend_name(), n, sh.verified, sh.failed, secs,
              static_cast<double>(n * kPayload) / 1e9, rep.accepted, rep.done, rep.failed);
  CHECK(done);
  CHECK_MESSAGE(sh.failed == 0, sh.first_error);
  CHECK(sh.connected == n);
  CHECK(sh.verified == n);
  REQUIRE(got == static_cast<ssize_t>(sizeof(rep)));
  CHECK_MESSAGE(rep.failed == 0, rep.first_error);
  CHECK(rep.finished);
  CHECK(rep.accepted == n);
  CHECK(rep.done == n);
  CHECK(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace ambit::io
