// Consumer-driven flow control and PING keepalive.
#include <doctest/doctest.h>

#include <chrono>

#include "tests/unit/http2/h2_pair.h"

namespace ambit::http2::testing {
namespace {

using std::chrono::seconds;

H2StreamId Open(H2Pair& p) {
  auto id = p.client->SubmitConnect("10.0.0.2:8080", {});
  REQUIRE(id.ok());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.server->SubmitResponse(*id, 200, {}).ok());
  REQUIRE(p.Pump().ok());
  return *id;
}

TEST_CASE("a receiver that does not Consume stops the sender at the stream window") {
  H2Pair p;
  p.server_events.auto_consume = false;
  H2StreamId id = Open(p);
  constexpr size_t kWindow = 4u << 20;
  auto payload = Pattern(8u << 20, 7);
  REQUIRE(p.client->Write(id, payload).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.data[id].size() == kWindow);
  CHECK(p.client->QueuedBytes(id) == payload.size() - kWindow);
  // More pumping changes nothing: the data is deferred, not buffered.
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.data[id].size() == kWindow);
  CHECK_FALSE(p.client->WantsWrite());

  // Consuming more than was delivered is refused.
  CHECK(p.server->Consume(id, kWindow + 1).code() == absl::StatusCode::kInvalidArgument);
  // Consume everything delivered so far: the rest flows.
  p.server_events.auto_consume = true;
  REQUIRE(p.server->Consume(id, kWindow).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.data[id].size() == payload.size());
  CHECK(Fnv1a(p.server_events.data[id]) == Fnv1a(payload));
  CHECK(p.client->QueuedBytes(id) == 0);
}

TEST_CASE("connection window is shared: 16 MiB across streams without Consume") {
  H2Pair p;
  p.server_events.auto_consume = false;
  std::vector<H2StreamId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Open(p));
  for (H2StreamId id : ids) REQUIRE(p.client->Write(id, Pattern(4u << 20, 3)).ok());
  REQUIRE(p.Pump().ok());
  size_t total = 0;
  for (H2StreamId id : ids) total += p.server_events.data[id].size();
  CHECK(total == (16u << 20));
  // Closing unconsumed streams gives their credit back to the connection
  // (nghttp2 sends WINDOW_UPDATE once half the window is returned).
  size_t freed = 0;
  size_t next = 0;
  while (freed < (8u << 20)) {
    freed += p.server_events.data[ids[next]].size();
    REQUIRE(p.server->Reset(ids[next], kH2Cancel).ok());
    ++next;
  }
  auto surviving = [&] {
    size_t sum = 0;
    for (size_t i = next; i < ids.size(); ++i) sum += p.server_events.data[ids[i]].size();
    return sum;
  };
  size_t before = surviving();
  REQUIRE(p.Pump().ok());
  CHECK(surviving() > before);
  CHECK(p.server->ActiveStreams() == ids.size() - next);
}

TEST_CASE("queued bytes and drain events let the caller apply watermarks") {
  H2Pair p;
  H2StreamId id = Open(p);
  REQUIRE(p.client->Write(id, Pattern(3u << 20, 9)).ok());
  CHECK(p.client->QueuedBytes(id) == (3u << 20));
  // Take one output chunk only: part of the queue has been framed.
  auto first = p.client->TakeOutput();
  CHECK(first.size() >= (256u << 10));
  CHECK(p.client->QueuedBytes(id) < (3u << 20));
  REQUIRE(p.client_events.drained.count(id) == 1);
  CHECK(p.client_events.drained[id] == p.client->QueuedBytes(id));
  REQUIRE(p.server->Feed(first).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client->QueuedBytes(id) == 0);
  CHECK(p.client_events.drained[id] == 0);
  CHECK(p.server_events.data[id].size() == (3u << 20));
}

TEST_CASE("DATA frames use the 1 MiB max frame size when enough is queued") {
  H2Pair p;
  H2StreamId id = Open(p);
  REQUIRE(p.client->Write(id, Pattern(1u << 20, 5)).ok());
  auto out = p.client->TakeOutput();
  auto frames = ScanFrames(out);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].type == 0x0);
  CHECK(frames[0].length == (1u << 20));
  // A small write goes out as one small frame.
  REQUIRE(p.server->Feed(out).ok());
  REQUIRE(p.client->Write(id, AsBytes("tail")).ok());
  frames = ScanFrames(p.client->TakeOutput());
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].length == 4);
}

TEST_CASE("PING after 10 s idle; dead when unanswered for 20 s more") {
  H2Pair p;
  REQUIRE(p.Pump().ok());
  auto start = p.clock.Now();
  CHECK(p.client->NextTickDeadline() == start + seconds(10));
  p.clock.Advance(seconds(9));
  REQUIRE(p.client->OnTick(p.clock.Now()).ok());
  CHECK(p.client->TakeOutput().empty());
  p.clock.Advance(seconds(1));
  REQUIRE(p.client->OnTick(p.clock.Now()).ok());
  auto ping = p.client->TakeOutput();
  REQUIRE(ping.size() == 17);  // 9-byte header + 8 opaque bytes
  CHECK(static_cast<int>(ping[3]) == 0x6);  // type PING
  CHECK(static_cast<int>(ping[4]) == 0x0);  // not an ACK
  // The peer answers: ack seen, the next ping is 10 s after the ack.
  REQUIRE(p.server->Feed(ping).ok());
  REQUIRE(p.client->Feed(p.server->TakeOutput()).ok());
  CHECK(p.client_events.ping_acks == 1);
  CHECK(p.client->NextTickDeadline() == p.clock.Now() + seconds(10));

  // Now a silent peer: PING at +10 s, never acked, dead 20 s later.
  p.clock.Advance(seconds(10));
  REQUIRE(p.client->OnTick(p.clock.Now()).ok());
  CHECK(p.client->TakeOutput().size() == 17);
  p.clock.Advance(seconds(19));
  REQUIRE(p.client->OnTick(p.clock.Now()).ok());
  CHECK_FALSE(p.client->Dead());
  p.clock.Advance(seconds(1));
  Status st = p.client->OnTick(p.clock.Now());
  CHECK(st.code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(st.message()).find("did not answer PING within 20s") != std::string::npos);
  CHECK(p.client->Dead());
  CHECK_FALSE(p.client->AcceptsNewStreams());
  // A GOAWAY(NO_ERROR) goes out, then the connection is closed.
  auto bye = p.client->TakeOutput();
  REQUIRE(bye.size() >= 17);
  CHECK(static_cast<int>(bye[3]) == 0x7);
  CHECK(p.client->Closed());
  CHECK(p.client->Feed(AsBytes("x")).code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("traffic from the peer postpones the keepalive PING") {
  H2Pair p;
  H2StreamId id = Open(p);
  p.clock.Advance(seconds(8));
  REQUIRE(p.server->Write(id, AsBytes("hello")).ok());
  REQUIRE(p.Pump().ok());
  p.clock.Advance(seconds(5));
  REQUIRE(p.client->OnTick(p.clock.Now()).ok());
  CHECK(p.client->TakeOutput().empty());
  CHECK(p.client->NextTickDeadline() == p.clock.Now() + seconds(5));
  REQUIRE(p.client->Ping().ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client_events.ping_acks == 1);
}

}  // namespace
}  // namespace ambit::http2::testing
