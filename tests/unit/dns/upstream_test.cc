#include "agent/dns/upstream.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "agent/dns/message.h"
#include "tests/unit/dns/dns_test_util.h"

namespace ambit::dns {
namespace {

// A UDP nameserver on 127.0.0.1:<ephemeral>: answers every query with the
// query itself as a response (QR set, `rcode`), or stays silent.
class FakeNameserver {
 public:
  FakeNameserver(bool silent, uint8_t rcode) : silent_(silent), rcode_(rcode) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeNameserver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int received() const { return received_.load(); }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      uint8_t buf[4096];
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
      if (n < 12) continue;
      ++received_;
      if (silent_) continue;
      buf[2] |= 0x80;
      buf[3] = static_cast<uint8_t>((buf[3] & 0xf0) | rcode_);
      ::sendto(fd_, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer), len);
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  bool silent_;
  uint8_t rcode_;
  std::atomic<bool> stop_{false};
  std::atomic<int> received_{0};
  std::thread thread_;
};

UpstreamConfig ConfigFor(uint16_t port) {
  UpstreamConfig c;
  c.source = "test";
  c.servers.emplace_back(net::IpAddress::LoopbackV4(), port);
  c.timeout = std::chrono::milliseconds(200);
  c.attempts = 1;
  c.mark = 0;
  return c;
}

UpstreamResult ForwardAndWait(Upstream& u, const std::string& pod, std::vector<uint8_t> q) {
  std::promise<UpstreamResult> done;
  auto f = done.get_future();
  u.Forward(pod, nullptr, false, std::move(q), [&done](UpstreamResult r) { done.set_value(std::move(r)); });
  REQUIRE(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  return f.get();
}

}  // namespace

TEST_CASE("resolv.conf: nameservers in order, options, the C library's default") {
  auto c = ParseResolvConf(
      "# comment\nsearch a.svc.cluster.local\nnameserver 10.96.0.10\nnameserver fe80::1%eth0\n"
      "nameserver bogus\nnameserver 2001:db8::53\noptions ndots:5 timeout:3 attempts:4\n",
      "f");
  REQUIRE(c.ok());
  CHECK(DescribeServers(*c) == "10.96.0.10:53, [fe80::1]:53, [2001:db8::53]:53");
  CHECK(c->timeout == std::chrono::seconds(3));
  CHECK(c->attempts == 4);
  auto none = ParseResolvConf("search x\n", "empty");
  REQUIRE(none.ok());
  CHECK(DescribeServers(*none) == "127.0.0.1:53");
  auto missing = ReadResolvConf("/nonexistent/resolv.conf");
  REQUIRE(missing.ok());
  CHECK(DescribeServers(*missing) == "127.0.0.1:53");
}

TEST_CASE("a query is forwarded as sent and the answer comes back (NXDOMAIN included)") {
  FakeNameserver ns(false, 3);
  auto u = Upstream::Start(ConfigFor(ns.port()));
  REQUIRE(u.ok());
  auto q = testing::MakeQuery("nope.example.com", 1, 0x5555);
  UpstreamResult r = ForwardAndWait(**u, "pod-a", q);
  REQUIRE(r.ok());
  CHECK(MessageRcode(r.answer) == Rcode::kNxDomain);
  CHECK(r.answer.size() == q.size());
  CHECK(std::vector<uint8_t>(r.answer.begin() + 12, r.answer.end()) ==
        std::vector<uint8_t>(q.begin() + 12, q.end()));
  auto relayed = RelayAnswer(r.answer, 0x5555, 512);
  REQUIRE(relayed.has_value());
  CHECK(MessageId(*relayed) == 0x5555);
  CHECK((*u)->sockets_opened() >= 1);
}

TEST_CASE("no answer: a typed timeout; SERVFAIL from every server: a failure") {
  FakeNameserver silent(true, 0);
  auto u = Upstream::Start(ConfigFor(silent.port()));
  REQUIRE(u.ok());
  UpstreamResult r = ForwardAndWait(**u, "pod-a", testing::MakeQuery("x.example", 1));
  CHECK(r.error == UpstreamError::kTimeout);
  CHECK(silent.received() >= 1);

  FakeNameserver failing(false, 2);
  auto u2 = Upstream::Start(ConfigFor(failing.port()));
  REQUIRE(u2.ok());
  UpstreamResult r2 = ForwardAndWait(**u2, "pod-a", testing::MakeQuery("x.example", 1));
  // c-ares 1.18 reports "every server failed" as ECONNREFUSED after skipping
  // the SERVFAIL answers; either way no answer is relayed.
  CHECK(!r2.ok());
  CHECK((r2.error == UpstreamError::kServerFailed || r2.error == UpstreamError::kRefused));
  CHECK(failing.received() >= 1);
}

TEST_CASE("forgetting a pod cancels its queries; stopping cancels the rest") {
  FakeNameserver silent(true, 0);
  UpstreamConfig c = ConfigFor(silent.port());
  c.timeout = std::chrono::seconds(5);
  auto u = Upstream::Start(c);
  REQUIRE(u.ok());
  std::promise<UpstreamResult> done;
  auto f = done.get_future();
  (*u)->Forward("pod-a", nullptr, false, testing::MakeQuery("x.example", 1),
                [&done](UpstreamResult r) { done.set_value(std::move(r)); });
  for (int i = 0; i < 200 && silent.received() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  (*u)->ForgetPod("pod-a");
  REQUIRE(f.wait_for(std::chrono::seconds(2)) == std::future_status::ready);
  CHECK(f.get().error == UpstreamError::kCancelled);

  std::promise<UpstreamResult> done2;
  auto f2 = done2.get_future();
  (*u)->Forward("pod-b", nullptr, false, testing::MakeQuery("y.example", 1),
                [&done2](UpstreamResult r) { done2.set_value(std::move(r)); });
  u->reset();
  REQUIRE(f2.wait_for(std::chrono::seconds(2)) == std::future_status::ready);
  CHECK(f2.get().error == UpstreamError::kCancelled);
}

}  // namespace ambit::dns
