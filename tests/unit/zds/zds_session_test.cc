// ZdsSession rules without sockets: snapshot sweep, no-op re-Add, NACKs,
// retries on simulated time, admin dump.
#include "agent/capture/zds_session.h"

#include <doctest/doctest.h>
#include <fcntl.h>

#include <string>
#include <vector>

#include "tests/unit/zds/recording_handler.h"

namespace ambit::agent::capture {
namespace {

using ambit::testing::RecordingHandler;
using namespace std::chrono_literals;

std::vector<net::Fd> SelfNetns() {
  std::vector<net::Fd> v;
  v.emplace_back(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  REQUIRE(v[0].valid());
  return v;
}

ZdsReply Add(ZdsSession& s, std::string uid) {
  return s.HandleDatagram(EncodeZdsAdd(uid, {uid + "-name", "ns", "sa"}), SelfNetns());
}

struct Fixture {
  RecordingHandler handler;
  base::SimulatedClock clock;
  ZdsSession session{handler, clock, 5s};
};

TEST_CASE_FIXTURE(Fixture, "snapshot: Add+Keep survive, others are torn down") {
  session.OnConnected();
  CHECK(Add(session, "a").ack_error == "");
  CHECK(Add(session, "b").ack_error == "");
  CHECK(Add(session, "c").ack_error == "");
  CHECK(!session.ready());  // no snapshot yet
  CHECK(session.HandleDatagram(EncodeZdsDel("c"), {}).ack_error == "");
  CHECK(session.HandleDatagram(EncodeZdsSnapshotSent(), {}).ack_error == "");
  CHECK(session.ready());
  CHECK(handler.removed() == std::vector<std::string>{"c"});
  CHECK(handler.snapshots() == std::vector<size_t>{2});

  // Reconnect: the new snapshot keeps a, re-adds nothing, so b goes away.
  session.OnConnected();
  CHECK(!session.snapshot_done());
  CHECK(session.HandleDatagram(EncodeZdsKeep("a"), {}).ack_error == "");
  CHECK(session.HandleDatagram(EncodeZdsSnapshotSent(), {}).ack_error == "");
  CHECK(handler.removed() == std::vector<std::string>{"c", "b"});
  auto pods = session.Pods();
  REQUIRE(pods.size() == 1);
  CHECK(pods[0].uid == "a");
  CHECK(pods[0].state == ZdsPodState::kUp);
  CHECK(session.counters().pods_added == 3);
  CHECK(session.counters().pods_removed == 2);
  CHECK(session.WorkloadStateJson() ==
        R"({"a":{"state":"Up","info":{"name":"a-name","namespace":"ns","serviceAccount":"sa"}}})");
}

TEST_CASE_FIXTURE(Fixture, "re-Add with the same netns is a no-op ack") {
  session.OnConnected();
  CHECK(Add(session, "a").ack_error == "");
  CHECK(Add(session, "a").ack_error == "");
  CHECK(handler.added().size() == 1);
  CHECK(handler.removed().empty());
  CHECK(session.counters().pods_added == 1);
}

TEST_CASE_FIXTURE(Fixture, "Keep after snapshot and second SnapshotSent are protocol errors") {
  session.OnConnected();
  CHECK(session.HandleDatagram(EncodeZdsSnapshotSent(), {}).ack_error == "");
  ZdsReply keep = session.HandleDatagram(EncodeZdsKeep("a"), {});
  CHECK(keep.protocol_error);
  CHECK(keep.ack_error ==
        "ZDS protocol error: KeepWorkload for pod a after SnapshotSent (Keep is only valid in a "
        "snapshot)");
  ZdsReply again = session.HandleDatagram(EncodeZdsSnapshotSent(), {});
  CHECK(again.protocol_error);
  CHECK(again.ack_error == "ZDS protocol error: second SnapshotSent on one connection");
  CHECK(session.counters().protocol_errors == 2);
  CHECK(session.counters().nacks == 2);
}

TEST_CASE_FIXTURE(Fixture, "handler failure NACKs with its text; retried every 5 s") {
  session.OnConnected();
  handler.FailAdds("netns helper busy");
  ZdsReply r = Add(session, "a");
  CHECK(!r.protocol_error);
  CHECK(r.ack_error == "adding pod ns/a-name (a): netns helper busy (retrying every 5000 ms)");
  CHECK(session.HandleDatagram(EncodeZdsSnapshotSent(), {}).ack_error == "");
  CHECK(!session.ready());  // a pod is pending
  CHECK(session.WorkloadStateJson().find(R"("state":"Pending")") != std::string::npos);

  auto next = session.RetryDue();  // not due yet
  REQUIRE(next.has_value());
  CHECK(*next == clock.Now() + 5s);
  clock.Advance(4s);
  session.RetryDue();
  CHECK(session.counters().add_failures == 1);
  clock.Advance(1s);
  session.RetryDue();
  CHECK(session.counters().add_failures == 2);  // failed again, rescheduled

  handler.FailAdds("");
  clock.Advance(5s);
  CHECK(!session.RetryDue().has_value());
  CHECK(session.ready());
  CHECK(handler.added().size() == 1);
  CHECK(session.counters().nacks == 1);
}

TEST_CASE_FIXTURE(Fixture, "Add with an fd that is not a netns is NACKed, fd closed") {
  session.OnConnected();
  std::vector<net::Fd> fds;
  fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int before = ambit::testing::CountOpenFds();
  ZdsReply r = session.HandleDatagram(EncodeZdsAdd("x", {"n", "ns", "sa"}), std::move(fds));
  CHECK(ambit::testing::CountOpenFds() == before - 1);
  CHECK(!r.protocol_error);
  CHECK(r.ack_error.find("AddWorkload for pod x: fd") != std::string::npos);
  CHECK(r.ack_error.find("not a network namespace") != std::string::npos);
  CHECK(handler.added().empty());
}

TEST_CASE_FIXTURE(Fixture,
                  "Del of an unknown pod is acked; Del of a pending pod skips the handler") {
  session.OnConnected();
  CHECK(session.HandleDatagram(EncodeZdsDel("ghost"), {}).ack_error == "");
  handler.FailAdds("no");
  CHECK(Add(session, "p").ack_error != "");
  CHECK(session.HandleDatagram(EncodeZdsDel("p"), {}).ack_error == "");
  CHECK(handler.removed().empty());
  CHECK(session.Pods().empty());
}

}  // namespace
}  // namespace ambit::agent::capture
