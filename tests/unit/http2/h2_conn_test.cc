#include <doctest/doctest.h>

#include "tests/unit/http2/h2_pair.h"

namespace ambit::http2::testing {
namespace {

H2StreamId OpenConnect(H2Pair& p, std::string_view authority = "10.0.0.2:8080") {
  auto id = p.client->SubmitConnect(authority, {{"traceparent", "00-abc"}});
  REQUIRE(id.ok());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.server_events.headers.count(*id) == 1);
  REQUIRE(p.server->SubmitResponse(*id, 200, {}).ok());
  REQUIRE(p.Pump().ok());
  return *id;
}

TEST_CASE("CONNECT request carries exactly :method, :authority and extra headers") {
  H2Pair p;
  auto id = p.client->SubmitConnect("10.0.0.2:8080", {{"baggage", "k8s.namespace.name=ns"},
                                                      {"traceparent", "00-x"}});
  REQUIRE(id.ok());
  CHECK(*id == 1);
  REQUIRE(p.Pump().ok());
  H2Headers expected = {{":method", "CONNECT"},
                        {":authority", "10.0.0.2:8080"},
                        {"baggage", "k8s.namespace.name=ns"},
                        {"traceparent", "00-x"}};
  CHECK(p.server_events.headers[1] == expected);
  CHECK(FindHeader(p.server_events.headers[1], ":scheme") == nullptr);
  CHECK(FindHeader(p.server_events.headers[1], ":path") == nullptr);

  REQUIRE(p.server->SubmitResponse(1, 200, {{"baggage", "service.name=b"}}).ok());
  REQUIRE(p.Pump().ok());
  H2Headers response = {{":status", "200"}, {"baggage", "service.name=b"}};
  CHECK(p.client_events.headers[1] == response);
}

TEST_CASE("1 MiB each way with checksums, then half-close each direction") {
  H2Pair p;
  H2StreamId id = OpenConnect(p);
  auto up = Pattern(1u << 20, 1);
  auto down = Pattern(1u << 20, 2);
  REQUIRE(p.client->Write(id, up).ok());
  REQUIRE(p.server->Write(id, down).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.data[id].size() == up.size());
  CHECK(Fnv1a(p.server_events.data[id]) == Fnv1a(up));
  CHECK(p.client_events.data[id].size() == down.size());
  CHECK(Fnv1a(p.client_events.data[id]) == Fnv1a(down));
  CHECK(p.client->QueuedBytes(id) == 0);

  // Client half-closes; the server keeps sending.
  REQUIRE(p.client->CloseWrite(id).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.ended.count(id) == 1);
  CHECK(p.client_events.ended.count(id) == 0);
  REQUIRE(p.server->Write(id, AsBytes("still flowing")).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client_events.data[id].size() == down.size() + 13);
  CHECK(p.client->Write(id, AsBytes("x")).code() == absl::StatusCode::kFailedPrecondition);

  // Server half-closes: the stream is now closed on both sides.
  REQUIRE(p.server->CloseWrite(id).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client_events.ended.count(id) == 1);
  CHECK(p.client_events.closed.at(id) == kH2NoError);
  CHECK(p.server_events.closed.at(id) == kH2NoError);
  CHECK(p.client->ActiveStreams() == 0);
  CHECK(p.server->ActiveStreams() == 0);
}

TEST_CASE("server half-close first; client direction keeps flowing") {
  H2Pair p;
  H2StreamId id = OpenConnect(p);
  REQUIRE(p.server->CloseWrite(id).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client_events.ended.count(id) == 1);
  CHECK(p.server_events.ended.count(id) == 0);
  REQUIRE(p.client->Write(id, AsBytes("after server FIN")).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.data[id].size() == 16);
}

TEST_CASE("RST_STREAM error codes reach the other side") {
  H2Pair p;
  H2StreamId a = OpenConnect(p);
  REQUIRE(p.server->Reset(a, kH2ConnectError).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client_events.resets.at(a) == kH2ConnectError);
  CHECK(p.client_events.closed.at(a) == kH2ConnectError);

  auto b = p.client->SubmitConnect("10.0.0.3:80", {});
  REQUIRE(b.ok());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.client->Reset(*b, kH2Cancel).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.resets.at(*b) == kH2Cancel);
  CHECK(p.client->Write(*b, AsBytes("x")).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("non-200 response with END_STREAM") {
  H2Pair p;
  auto id = p.client->SubmitConnect("10.0.0.2:1", {});
  REQUIRE(id.ok());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.server->SubmitResponse(*id, 503, {}, /*end_stream=*/true).ok());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.client_events.headers.count(*id) == 1);
  CHECK(*FindHeader(p.client_events.headers[*id], ":status") == "503");
  CHECK(p.client_events.ended.count(*id) == 1);
  // The request half is reset with NO_ERROR: both ends forget the stream.
  CHECK(p.client_events.resets.at(*id) == kH2NoError);
  CHECK(p.client->ActiveStreams() == 0);
  CHECK(p.server->ActiveStreams() == 0);
  CHECK(p.server->SubmitResponse(*id, 200, {}).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("GOAWAY from the server makes the client not reusable") {
  H2Pair p;
  H2StreamId id = OpenConnect(p);
  CHECK(p.client->AcceptsNewStreams());
  REQUIRE(p.server->GoAway().ok());
  CHECK_FALSE(p.server->AcceptsNewStreams());
  REQUIRE(p.Pump().ok());
  CHECK(p.client->GoAwayReceived());
  CHECK_FALSE(p.client->AcceptsNewStreams());
  REQUIRE(p.client_events.goaways.size() == 1);
  CHECK(p.client_events.goaways[0] == std::make_pair(uint32_t{kH2NoError}, id));
  CHECK(p.client->SubmitConnect("10.0.0.9:1", {}).status().code() ==
        absl::StatusCode::kUnavailable);
  // The existing stream still works and then the connection winds down.
  REQUIRE(p.client->Write(id, AsBytes("drain")).ok());
  REQUIRE(p.client->CloseWrite(id).ok());
  REQUIRE(p.server->CloseWrite(id).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.data[id].size() == 5);
  CHECK(p.client->Closed());
  CHECK(p.server->Closed());
}

TEST_CASE("250 streams against a server limit of 200") {
  H2Pair p;
  REQUIRE(p.Pump().ok());  // settings exchange
  CHECK(p.client->PeerMaxConcurrentStreams() == 200);
  std::vector<H2StreamId> ids;
  for (int i = 0; i < 250; ++i) {
    auto id = p.client->SubmitConnect("10.0.0.2:80", {});
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.headers.size() == 200);
  CHECK(p.server->ActiveStreams() == 200);
  CHECK(p.client->ActiveStreams() == 250);
  CHECK_FALSE(p.client->AcceptsNewStreams());
  // Finish 50 streams: the 50 held back by nghttp2 go out.
  for (int i = 0; i < 50; ++i) {
    REQUIRE(p.server->SubmitResponse(ids[i], 200, {}, /*end_stream=*/true).ok());
    REQUIRE(p.client->CloseWrite(ids[i]).ok());
  }
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.headers.size() == 250);
  CHECK(p.server->ActiveStreams() == 200);
  CHECK(p.client->ActiveStreams() == 200);
  CHECK_FALSE(p.client->AcceptsNewStreams());
  // Resetting a request that is still queued locally just drops it.
  auto queued = p.client->SubmitConnect("10.0.0.2:80", {});
  REQUIRE(queued.ok());
  CHECK(p.client->ActiveStreams() == 201);
  REQUIRE(p.client->Reset(*queued, kH2Cancel).ok());
  CHECK(p.client->ActiveStreams() == 200);
  REQUIRE(p.Pump().ok());
  CHECK(p.server_events.headers.count(*queued) == 0);
  REQUIRE(p.server->SubmitResponse(ids[60], 200, {}, true).ok());
  REQUIRE(p.client->CloseWrite(ids[60]).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client->AcceptsNewStreams());
}

TEST_CASE("GOAWAY refuses the streams the server never saw (safe to retry)") {
  H2Pair p;
  REQUIRE(p.Pump().ok());
  std::vector<H2StreamId> ids;
  for (int i = 0; i < 210; ++i) ids.push_back(p.client->SubmitConnect("10.0.0.2:80", {}).value());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.server_events.headers.size() == 200);
  REQUIRE(p.server->GoAway().ok());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.client_events.goaways.size() == 1);
  CHECK(p.client_events.goaways[0].second == ids[199]);
  for (int i = 200; i < 210; ++i) {
    CAPTURE(i);
    CHECK(p.client_events.closed.at(ids[i]) == kH2RefusedStream);
  }
  CHECK(p.client->ActiveStreams() == 200);
  CHECK(p.client_events.closed.count(ids[0]) == 0);
}

TEST_CASE("client-side GOAWAY drains too") {
  H2Pair p;
  H2StreamId id = OpenConnect(p);
  REQUIRE(p.client->GoAway().ok());
  CHECK_FALSE(p.client->AcceptsNewStreams());
  REQUIRE(p.Pump().ok());
  CHECK(p.server->GoAwayReceived());
  REQUIRE(p.server->Write(id, AsBytes("bye")).ok());
  REQUIRE(p.server->CloseWrite(id).ok());
  REQUIRE(p.client->CloseWrite(id).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client_events.data[id].size() == 3);
  CHECK(p.client->Closed());
  CHECK(p.server->Closed());
}

std::map<int, uint32_t> SettingsOf(std::span<const std::byte> out, const FrameInfo& f) {
  std::map<int, uint32_t> m;
  auto u8 = [&](size_t i) { return static_cast<uint32_t>(out[i]); };
  for (size_t i = f.offset + 9; i + 6 <= f.offset + 9 + f.length; i += 6) {
    m[static_cast<int>((u8(i) << 8) | u8(i + 1))] =
        (u8(i + 2) << 24) | (u8(i + 3) << 16) | (u8(i + 4) << 8) | u8(i + 5);
  }
  return m;
}

uint32_t WindowIncrement(std::span<const std::byte> out, const FrameInfo& f) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint32_t>(out[f.offset + 9 + i]);
  return v & 0x7fffffffu;
}

TEST_CASE("settings and connection window are what ISTIO-COMPAT asks for") {
  H2Pair p;
  auto client_out = p.client->TakeOutput();
  std::string_view magic = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  REQUIRE(client_out.size() > magic.size() + 9);
  CHECK(std::string_view(reinterpret_cast<const char*>(client_out.data()), magic.size()) ==
        magic);
  auto frames = ScanFrames(client_out, magic.size());
  REQUIRE(frames.size() == 2);
  REQUIRE(frames[0].type == 0x4);
  std::map<int, uint32_t> client_settings = {
      {0x2, 0}, {0x4, 4u << 20}, {0x5, 1u << 20}, {0x6, 16u << 10}};
  CHECK(SettingsOf(client_out, frames[0]) == client_settings);
  REQUIRE(frames[1].type == 0x8);  // WINDOW_UPDATE on stream 0 up to 16 MiB
  CHECK(frames[1].stream == 0);
  CHECK(WindowIncrement(client_out, frames[1]) == (16u << 20) - 65535);

  auto server_out = p.server->TakeOutput();
  frames = ScanFrames(server_out);
  REQUIRE(frames.size() == 2);
  std::map<int, uint32_t> server_settings = {
      {0x3, 200}, {0x4, 4u << 20}, {0x5, 1u << 20}, {0x6, 64u << 10}};
  CHECK(SettingsOf(server_out, frames[0]) == server_settings);
  CHECK(WindowIncrement(server_out, frames[1]) == (16u << 20) - 65535);

  CHECK(p.client->PeerMaxConcurrentStreams() == 100);  // initial_peer_max_streams
  REQUIRE(p.server->Feed(client_out).ok());
  REQUIRE(p.client->Feed(server_out).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client->PeerMaxConcurrentStreams() == 200);
  CHECK(p.server->PeerMaxConcurrentStreams() == 0xffffffffu);
}

TEST_CASE("a response header list over the client's 16 KiB limit resets the stream") {
  H2Pair p;
  auto id = p.client->SubmitConnect("10.0.0.2:80", {});
  REQUIRE(id.ok());
  REQUIRE(p.Pump().ok());
  REQUIRE(p.server->SubmitResponse(*id, 200, {{"x-big", std::string(20u << 10, 'b')}}).ok());
  REQUIRE(p.Pump().ok());
  CHECK(p.client_events.headers.count(*id) == 0);
  CHECK(p.client_events.closed.at(*id) == kH2RefusedStream);
  CHECK(p.server_events.resets.at(*id) == kH2RefusedStream);
  CHECK(p.client->AcceptsNewStreams());  // the connection survives
}

TEST_CASE("API misuse is reported, not crashed on") {
  H2Pair p;
  CHECK(p.server->SubmitConnect("a:1", {}).status().code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(p.client->SubmitResponse(1, 200, {}).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(p.client->SubmitConnect("a:1", {{"Upper", "x"}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(p.client->SubmitConnect("a:1", {{":path", "/"}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(p.client->Write(99, AsBytes("x")).code() == absl::StatusCode::kNotFound);
  CHECK(p.client->Reset(99, 0).code() == absl::StatusCode::kNotFound);
  H2Options bad;
  bad.max_frame_size = 100;
  Recorder r;
  base::SimulatedClock clock;
  CHECK(H2Conn::Create(H2Role::kClient, bad, r, clock).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ambit::http2::testing
