// ZdsClient against FakeZdsNodeAgent over a real SOCK_SEQPACKET socket,
// with real netns fds (/proc/self/ns/net): no root needed.
#include "agent/capture/zds_client.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "common/io/loop.h"
#include "tests/support/fake_zds.h"
#include "tests/unit/zds/recording_handler.h"

namespace ambit::agent::capture {
namespace {

using ambit::testing::CountOpenFds;
using ambit::testing::FakeZdsNodeAgent;
using ambit::testing::RecordingHandler;
using namespace std::chrono_literals;

std::string UniquePath() {
  static std::atomic<int> n{0};
  return "@ambit-zds-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
}

// Polls `pred` until true or 5 s passed.
template <typename Pred>
bool WaitFor(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

int SelfNetnsFd(net::Fd& keep) {
  auto fd = FakeZdsNodeAgent::OpenNetns("/proc/self/ns/net");
  REQUIRE(fd.ok());
  keep = std::move(*fd);
  return keep.get();
}

struct Fixture {
  Fixture() {
    auto f = FakeZdsNodeAgent::Listen(path);
    REQUIRE(f.ok());
    fake = std::move(*f);
    ns_fd = SelfNetnsFd(ns);
  }
  std::unique_ptr<ZdsClient> StartClient(io::Loop* loop = nullptr) {
    auto c = std::make_unique<ZdsClient>(
        ZdsClientOptions{.uds_path = path, .retry_interval = 50ms, .handler_loop = loop}, handler);
    c->Start();
    REQUIRE(fake->AcceptClient().ok());
    return c;
  }
  std::string path = UniquePath();
  std::unique_ptr<FakeZdsNodeAgent> fake;
  RecordingHandler handler;
  net::Fd ns;
  int ns_fd = -1;
};

TEST_CASE_FIXTURE(Fixture, "hello V1, snapshot, then live Add/Del") {
  auto client = StartClient();
  CHECK(fake->hello_version() == 1);
  CHECK(client->connected());
  CHECK(*fake->Add("a", {"pod-a", "default", "sa-a"}, {ns_fd}) == "");
  CHECK(*fake->Keep("k") == "");
  CHECK(!client->ready());
  CHECK(*fake->SnapshotSent() == "");
  CHECK(client->ready());
  CHECK(*fake->Add("b", {"pod-b", "default", "sa-b"}, {ns_fd}) == "");
  CHECK(*fake->Del("a") == "");
  auto added = handler.added();
  REQUIRE(added.size() == 2);
  CHECK(added[0].uid == "a");
  CHECK(added[0].name == "pod-a");
  CHECK(added[0].ns == "default");
  CHECK(added[0].sa == "sa-a");
  auto self = net::NetnsHandle::Open("/proc/self/ns/net");
  REQUIRE(self.ok());
  CHECK(added[0].netns == self->id());
  CHECK(handler.removed() == std::vector<std::string>{"a"});
  CHECK(fake->acks() == std::vector<std::string>(5, ""));
  CHECK(client->stats().session.pods_added == 2);
  CHECK(client->stats().session.pods_removed == 1);
}

TEST_CASE_FIXTURE(Fixture, "reconnect snapshot tears down pods not in it") {
  auto client = StartClient();
  CHECK(*fake->Add("a", {"pod-a", "ns", "sa"}, {ns_fd}) == "");
  CHECK(*fake->Add("b", {"pod-b", "ns", "sa"}, {ns_fd}) == "");
  CHECK(*fake->SnapshotSent() == "");
  fake->DropClient();  // node agent restarts its connection
  REQUIRE(fake->AcceptClient().ok());
  CHECK(client->stats().connects == 2);
  CHECK(*fake->Keep("a") == "");
  CHECK(*fake->Add("c", {"pod-c", "ns", "sa"}, {ns_fd}) == "");
  CHECK(*fake->SnapshotSent() == "");
  CHECK(handler.removed() == std::vector<std::string>{"b"});
  CHECK(client->WorkloadStateJson().find("\"b\"") == std::string::npos);
  CHECK(client->Pods().size() == 2);
  CHECK(client->ready());
}

TEST_CASE_FIXTURE(Fixture, "Add without fd: NACK, connection dropped, client reconnects") {
  auto client = StartClient();
  CHECK(*fake->Add("a", {"pod-a", "ns", "sa"}, {}) ==
        "ZDS protocol error: AddWorkload for pod a must carry exactly one netns fd, got 0");
  REQUIRE(fake->ExpectClientClosed().ok());
  REQUIRE(fake->AcceptClient().ok());
  CHECK(client->stats().session.protocol_errors == 1);
  CHECK(*fake->SnapshotSent() == "");
  CHECK(handler.added().empty());
}

TEST_CASE_FIXTURE(Fixture, "Add with two fds: NACK and both fds closed (no leak)") {
  auto client = StartClient();
  // Warm up once so lazily opened fds (logging, protobuf) are already counted.
  CHECK(*fake->Add("w", {"w", "ns", "sa"}, {ns_fd}) == "");
  int before = CountOpenFds();
  CHECK(*fake->Add("a", {"pod-a", "ns", "sa"}, {ns_fd, ns_fd}) ==
        "ZDS protocol error: AddWorkload for pod a must carry exactly one netns fd, got 2");
  REQUIRE(fake->ExpectClientClosed().ok());
  REQUIRE(fake->AcceptClient().ok());
  CHECK(WaitFor([&] { return CountOpenFds() == before; }));
  // Nine fds: more than the control buffer holds (MSG_CTRUNC) — still no leak.
  std::vector<int> many(9, ns_fd);
  auto r = fake->Add("m", {"m", "ns", "sa"}, many);
  REQUIRE(r.ok());
  CHECK(r->find("MSG_CTRUNC") != std::string::npos);
  REQUIRE(fake->ExpectClientClosed().ok());
  REQUIRE(fake->AcceptClient().ok());
  CHECK(WaitFor([&] { return CountOpenFds() == before; }));
  CHECK(client->stats().session.protocol_errors == 2);
  CHECK(handler.added().size() == 1);
}

TEST_CASE_FIXTURE(Fixture, "Del or Keep carrying an fd: protocol error, fd closed") {
  auto client = StartClient();
  CHECK(*fake->Add("w", {"w", "ns", "sa"}, {ns_fd}) == "");  // warm-up
  int before = CountOpenFds();
  CHECK(*fake->SendRaw(EncodeZdsDel("w"), {ns_fd}) ==
        "ZDS protocol error: DelWorkload must not carry fds, got 1");
  REQUIRE(fake->ExpectClientClosed().ok());
  REQUIRE(fake->AcceptClient().ok());
  CHECK(*fake->SendRaw(EncodeZdsKeep("w"), {ns_fd}) ==
        "ZDS protocol error: KeepWorkload must not carry fds, got 1");
  REQUIRE(fake->ExpectClientClosed().ok());
  REQUIRE(fake->AcceptClient().ok());
  CHECK(WaitFor([&] { return CountOpenFds() == before; }));
  CHECK(handler.removed().empty());  // the bad Del was not applied
  CHECK(client->stats().session.protocol_errors == 2);
}

TEST_CASE_FIXTURE(Fixture, "Keep after snapshot and second SnapshotSent: protocol errors") {
  auto client = StartClient();
  CHECK(*fake->SnapshotSent() == "");
  CHECK(fake->Keep("a")->find("KeepWorkload for pod a after SnapshotSent") != std::string::npos);
  REQUIRE(fake->ExpectClientClosed().ok());
  REQUIRE(fake->AcceptClient().ok());
  CHECK(*fake->SnapshotSent() == "");
  CHECK(*fake->SnapshotSent() == "ZDS protocol error: second SnapshotSent on one connection");
  REQUIRE(fake->ExpectClientClosed().ok());
  REQUIRE(fake->AcceptClient().ok());
  CHECK(*fake->SnapshotSent() == "");
  CHECK(client->stats().session.protocol_errors == 2);
  CHECK(client->stats().connects == 3);
}

TEST_CASE_FIXTURE(Fixture, "garbage datagram and oversized datagram: NACK, no crash") {
  auto client = StartClient();
  CHECK(*fake->SendRaw(std::string("\xff\xff\xff", 3)) ==
        "ZDS protocol error: undecodable WorkloadRequest (3 bytes)");
  REQUIRE(fake->ExpectClientClosed().ok());
  REQUIRE(fake->AcceptClient().ok());
  auto big = fake->SendRaw(std::string(2000, 'x'));
  REQUIRE(big.ok());
  CHECK(big->find("larger than 1024 bytes (MSG_TRUNC)") != std::string::npos);
  REQUIRE(fake->ExpectClientClosed().ok());
}

TEST_CASE_FIXTURE(Fixture, "same netns re-Add is a no-op") {
  auto client = StartClient();
  CHECK(*fake->Add("a", {"pod-a", "ns", "sa"}, {ns_fd}) == "");
  CHECK(*fake->Add("a", {"pod-a", "ns", "sa"}, {ns_fd}) == "");
  CHECK(handler.added().size() == 1);
  CHECK(handler.removed().empty());
}

TEST_CASE_FIXTURE(Fixture, "handler failure: NACK with its text, retried until it works") {
  auto client = StartClient();
  handler.FailAdds("cannot bind 15008 in pod netns");
  CHECK(*fake->Add("a", {"pod-a", "ns", "sa"}, {ns_fd}) ==
        "adding pod ns/pod-a (a): cannot bind 15008 in pod netns (retrying every 50 ms)");
  CHECK(*fake->SnapshotSent() == "");
  CHECK(!client->ready());
  CHECK(client->WorkloadStateJson().find(R"("a":{"state":"Pending")") != std::string::npos);
  CHECK(WaitFor([&] { return client->stats().session.add_failures >= 2; }));
  handler.FailAdds("");
  CHECK(WaitFor([&] { return client->ready(); }));
  CHECK(handler.added().size() == 1);
  CHECK(client->stats().session.nacks == 1);
}

TEST_CASE_FIXTURE(Fixture, "reconnect with backoff after the node agent restarts") {
  auto client = StartClient();
  CHECK(*fake->SnapshotSent() == "");
  fake.reset();  // node agent gone: the client sees ECONNREFUSED and backs off
  CHECK(WaitFor([&] { return client->stats().connect_failures >= 2; }));
  CHECK(!client->connected());
  auto f = FakeZdsNodeAgent::Listen(path);
  REQUIRE(f.ok());
  fake = std::move(*f);
  REQUIRE(fake->AcceptClient().ok());
  CHECK(*fake->Add("a", {"pod-a", "ns", "sa"}, {ns_fd}) == "");
  CHECK(*fake->SnapshotSent() == "");
  CHECK(client->stats().connects == 2);
  CHECK(handler.added().size() == 1);
}

TEST_CASE_FIXTURE(Fixture, "handler calls run on the control loop thread") {
  auto loop = io::Loop::Create({.backend = io::BackendKind::kEpoll, .name = "control"});
  REQUIRE(loop.ok());
  std::thread::id loop_thread;
  std::thread runner([&] {
    loop_thread = std::this_thread::get_id();
    (*loop)->Run();
  });
  {
    auto client = StartClient(loop->get());
    CHECK(*fake->Add("a", {"pod-a", "ns", "sa"}, {ns_fd}) == "");
    CHECK(*fake->SnapshotSent() == "");
    CHECK(handler.added().size() == 1);
    CHECK(handler.snapshots() == std::vector<size_t>{1});
    CHECK(*fake->Del("a") == "");
    CHECK(handler.removed() == std::vector<std::string>{"a"});
    auto threads = handler.threads();
    REQUIRE(threads.size() == 3);
    for (auto id : threads) CHECK(id == loop_thread);
    CHECK(loop_thread != std::this_thread::get_id());
    client->Stop();
  }
  (*loop)->Stop();
  runner.join();
}

TEST_CASE("no node agent: Stop() returns promptly while backing off") {
  RecordingHandler handler;
  ZdsClient client({.uds_path = UniquePath(), .backoff_initial = 10ms, .backoff_max = 20ms},
                   handler);
  client.Start();
  CHECK(WaitFor([&] { return client.stats().connect_failures >= 3; }));
  auto t0 = std::chrono::steady_clock::now();
  client.Stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(client.stats().connects == 0);
}

}  // namespace
}  // namespace ambit::agent::capture
