// Echo server and clients on loopback: N concurrent connections (10,000 when RLIMIT_NOFILE
// allows), each sending 64 KiB of pseudo-random bytes that are verified byte for byte.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <vector>

#include "common/io/acceptor.h"
#include "common/io/cancel.h"
#include "common/io/event.h"
#include "io_test_util.h"

namespace ambit::io {
namespace {

using namespace std::chrono_literals;
using testing::Sa;

constexpr size_t kPayload = 64 * 1024;
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

struct Shared {
  Loop* loop;
  sockaddr_in addr;
  size_t n;
  size_t connected = 0;
  size_t connecting = 0;
  size_t verified = 0;
  size_t failed = 0;
  size_t server_done = 0;
  Event* all_connected;
  std::string first_error;
  void Fail(const Status& s) {
    if (first_error.empty()) first_error = s.ToString();
    ++failed;
  }
};

Task<void> EchoConn(Shared& sh, int fd) {
  std::array<std::byte, kChunk> buf;
  for (;;) {
    StatusOr<size_t> n = co_await sh.loop->Recv(fd, buf, {.timeout = 30s});
    if (!n.ok()) {
      sh.Fail(n.status());
      break;
    }
    if (*n == 0) break;
    Status s = co_await SendAll(*sh.loop, fd, std::span(buf.data(), *n), {.timeout = 30s});
    if (!s.ok()) {
      sh.Fail(s);
      break;
    }
  }
  (void)co_await sh.loop->Close(fd);
  ++sh.server_done;
}

Task<void> Server(Shared& sh, Acceptor& acc) {
  for (size_t i = 0; i < sh.n; ++i) {
    StatusOr<Accepted> a = co_await acc.Next({.timeout = 30s});
    if (!a.ok()) {
      sh.Fail(a.status());
      co_return;
    }
    sh.loop->Spawn(EchoConn(sh, a->fd));
  }
}

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

size_t ConnectionBudget() {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  getrlimit(RLIMIT_NOFILE, &rl);
  const size_t wanted = 10'000;
  const size_t reserve = 64;  // loop, listener, doctest, stdio
  size_t fit = rl.rlim_cur > reserve ? (rl.rlim_cur - reserve) / 2 : 0;
  if (fit < wanted) {
    std::printf("echo test: RLIMIT_NOFILE hard limit %llu allows %zu concurrent connections "
                "(2 fds each), not %zu; running %zu\n",
                static_cast<unsigned long long>(rl.rlim_max), fit, wanted, fit);
    return fit;
  }
  return wanted;
}

TEST_CASE("echo: 10,000 concurrent loopback connections x 64 KiB, verified") {
  FOR_EACH_BACKEND(kind);
  const size_t n = ConnectionBudget();
  REQUIRE(n >= 1000);
  auto loop = testing::MakeLoop(kind);
  Event all_connected(*loop);
  Shared sh{.loop = loop.get(), .addr = {}, .n = n, .all_connected = &all_connected};
  int lfd = testing::Listener(&sh.addr);
  Acceptor acc(*loop, lfd);
  auto start = std::chrono::steady_clock::now();
  loop->Spawn(Server(sh, acc));
  loop->Spawn(Launch(sh));
  bool done = loop->RunUntil(
      [&] { return sh.verified + sh.failed >= n && sh.server_done == sh.connected; }, 55s);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("echo test [%s]: %zu connections, %zu verified, %zu failed, %.2f s, %.2f GB echoed\n",
              loop->backend_name(), n, sh.verified, sh.failed, secs,
              static_cast<double>(n * kPayload) / 1e9);
  CHECK(done);
  CHECK_MESSAGE(sh.failed == 0, sh.first_error);
  CHECK(sh.connected == n);
  CHECK(sh.verified == n);
  loop->BlockOn(acc.Close());
  ::close(lfd);
}

}  // namespace
}  // namespace ambit::io
