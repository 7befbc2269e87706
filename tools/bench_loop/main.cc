// ambit-bench-loop: loopback echo throughput and 64 B round-trip latency through the
// io Loop (io_uring and epoll) next to a plain blocking-socket baseline, interleaved in one
// run (A B C, A B C, A B C) and reported as medians in a markdown table (BENCHMARKS.md).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "common/base/log.h"
#include "common/io/loop.h"

namespace {

using namespace std::chrono_literals;
using ambit::Status;
using ambit::StatusOr;
namespace io = ambit::io;
using Clock = std::chrono::steady_clock;

constexpr size_t kBulkBytes = 192u << 20;
constexpr size_t kChunk = 64 * 1024;
constexpr int kPings = 5000;

struct Result {
  double gbps = 0;  // GB/s echoed
  double p50_us = 0;
  double p99_us = 0;
};

struct Conn {
  int server = -1;
  int client = -1;
};

// A connected loopback TCP pair (nodelay), blocking or not.
Conn Connect(bool nonblock) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::listen(l, 1);
  socklen_t len = sizeof(a);
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  Conn c;
  c.client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::connect(c.client, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  c.server = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(l);
  int one = 1;
  for (int fd : {c.client, c.server}) {
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (nonblock) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  return c;
}

double Percentile(std::vector<double>& v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

// ---- blocking baseline -------------------------------------------------------

void BlockingEcho(int fd) {
  std::vector<char> buf(kChunk);
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::send(fd, buf.data() + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
      if (w <= 0) return;
      off += w;
    }
  }
  ::shutdown(fd, SHUT_WR);
}

Result RunBlocking() {
  Result r;
  {
    Conn c = Connect(false);
    std::thread server(BlockingEcho, c.server);
    auto t0 = Clock::now();
    std::thread sender([fd = c.client] {
      std::vector<char> buf(kChunk, 'x');
      for (size_t sent = 0; sent < kBulkBytes;) {
        ssize_t w = ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
        if (w <= 0) break;
        sent += static_cast<size_t>(w);
      }
      ::shutdown(fd, SHUT_WR);
    });
    std::vector<char> buf(kChunk);
    size_t got = 0;
    for (ssize_t n; (n = ::recv(c.client, buf.data(), buf.size(), 0)) > 0;) got += static_cast<size_t>(n);
    r.gbps = static_cast<double>(got) / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9;
    sender.join();
    ::close(c.client);
    server.join();
    ::close(c.server);
  }
  Conn c = Connect(false);
  std::thread server(BlockingEcho, c.server);
  std::vector<double> rtt;
  rtt.reserve(kPings);
  char msg[64] = {};
  for (int i = 0; i < kPings; ++i) {
    auto t0 = Clock::now();
    ::send(c.client, msg, sizeof(msg), MSG_NOSIGNAL);
    for (size_t got = 0; got < sizeof(msg);) {
      ssize_t n = ::recv(c.client, msg + got, sizeof(msg) - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  ::close(c.client);
  server.join();
  ::close(c.server);
  r.p50_us = Percentile(rtt, 0.50);
  r.p99_us = Percentile(rtt, 0.99);
  return r;
}

// ---- the Loop ----------------------------------------------------------------

io::Task<void> LoopEcho(io::Loop& loop, int fd) {
  std::vector<std::byte> buf(kChunk);
  for (;;) {
    StatusOr<size_t> n = co_await loop.Recv(fd, buf);
    if (!n.ok() || *n == 0) break;
    if (!(co_await io::SendAll(loop, fd, std::span(buf.data(), *n))).ok()) break;
  }
  (void)co_await loop.Close(fd);
}

io::Task<Status> BulkSend(io::Loop& loop, int fd) {
  std::vector<std::byte> buf(kChunk, std::byte{'x'});
  for (size_t sent = 0; sent < kBulkBytes; sent += kChunk) {
    CO_RETURN_IF_ERROR(co_await io::SendAll(loop, fd, buf));
  }
  co_return co_await loop.Shutdown(fd, SHUT_WR);
}

io::Task<StatusOr<size_t>> BulkRecv(io::Loop& loop, int fd) {
  std::vector<std::byte> buf(kChunk);
  size_t got = 0;
  for (;;) {
    StatusOr<size_t> n = co_await loop.Recv(fd, buf);
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return got;
    got += *n;
  }
}

io::Task<double> Bulk(io::Loop& loop) {
  Conn c = Connect(true);
  loop.Spawn(LoopEcho(loop, c.server));
  auto t0 = Clock::now();
  auto [sent, got] = co_await io::WhenAll(BulkSend(loop, c.client), BulkRecv(loop, c.client));
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  (void)co_await loop.Close(c.client);
  if (!sent.ok() || !got.ok()) co_return 0.0;
  co_return static_cast<double>(*got) / secs / 1e9;
}

io::Task<std::vector<double>> PingPong(io::Loop& loop) {
  Conn c = Connect(true);
  loop.Spawn(LoopEcho(loop, c.server));
  std::vector<double> rtt;
  rtt.reserve(kPings);
  std::array<std::byte, 64> msg{};
  for (int i = 0; i < kPings; ++i) {
    auto t0 = Clock::now();
    if (!(co_await io::SendAll(loop, c.client, msg)).ok()) break;
    if (!(co_await io::RecvExact(loop, c.client, msg)).ok()) break;
    rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  (void)co_await loop.Close(c.client);
  co_return rtt;
}

Result RunLoop(io::BackendKind kind) {
  auto loop = io::Loop::Create({.backend = kind, .name = "bench"});
  if (!loop.ok()) return {};
  Result r;
  r.gbps = (*loop)->BlockOn(Bulk(**loop));
  std::vector<double> rtt = (*loop)->BlockOn(PingPong(**loop));
  if (!rtt.empty()) {
    r.p50_us = Percentile(rtt, 0.50);
    r.p99_us = Percentile(rtt, 0.99);
  }
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main() {
  ambit::base::ProcessLogger().Reset(ambit::base::LogLevel::kWarn);
  const char* names[] = {"blocking sockets (2 threads)", "Loop io_uring (1 thread)",
                         "Loop epoll (1 thread)"};
  std::vector<Result> runs[3];
  const auto deadline = Clock::now() + 25s;
  for (int rep = 0; rep < 3 && Clock::now() < deadline; ++rep) {  // A B C, A B C, A B C
    runs[0].push_back(RunBlocking());
    runs[1].push_back(RunLoop(io::BackendKind::kUring));
    runs[2].push_back(RunLoop(io::BackendKind::kEpoll));
  }
  std::printf("| path | echo GB/s | RTT p50 us | RTT p99 us | runs (GB/s) |\n");
  std::printf("|---|---|---|---|---|\n");
  for (int i = 0; i < 3; ++i) {
    std::vector<double> g, p50, p99;
    std::string all;
    for (const Result& r : runs[i]) {
      g.push_back(r.gbps);
      p50.push_back(r.p50_us);
      p99.push_back(r.p99_us);
      char b[32];
      std::snprintf(b, sizeof(b), "%s%.2f", all.empty() ? "" : " ", r.gbps);
      all += b;
    }
    std::printf("| %s | %.2f | %.1f | %.1f | %s |\n", names[i], Median(g), Median(p50),
                Median(p99), all.c_str());
  }
  std::printf("\n%d B messages x %d round trips; %zu MiB bulk echo; medians of %zu interleaved runs.\n",
              64, kPings, kBulkBytes >> 20, runs[0].size());
  return 0;
}
