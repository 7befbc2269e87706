// Fuzz target: the HTTP/2 server session (H2Conn over nghttp2) fed the raw
// bytes a client sends after TLS. Input layout:
//   byte 0: bit 0 = prepend the client preface; bits 1..7 = feed chunk size
//           (0 = all at once) to exercise frame reassembly.
//   rest:   client bytes (frames).
// The server behaves like the HBONE inbound path: answers each request 200,
// consumes and echoes data, half-closes after END_STREAM, runs keepalive.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/base/clock.h"
#include "common/http2/h2_conn.h"
#include "common/http2/h2_types.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ambit;

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

class EchoEvents final : public http2::H2Events {
 public:
  void OnStreamHeaders(http2::H2StreamId id, const http2::H2Headers& headers) override {
    (void)http2::FindHeader(headers, ":authority");
    if (conn != nullptr) (void)conn->SubmitResponse(id, 200, {});
  }
  void OnStreamData(http2::H2StreamId id, std::span<const std::byte> data) override {
    if (conn == nullptr) return;
    (void)conn->Consume(id, data.size());
    (void)conn->Write(id, data.first(std::min<size_t>(data.size(), 256)));
  }
  void OnStreamEnd(http2::H2StreamId id) override { ended.push_back(id); }

  http2::H2Conn* conn = nullptr;
  std::vector<http2::H2StreamId> ended;
};

void Drain(http2::H2Conn& conn) {
  for (int i = 0; i < 64 && conn.WantsWrite(); ++i) {
    auto out = conn.PendingOutput();
    if (out.empty()) break;
    conn.ConsumeOutput(out.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool preface = (data[0] & 1) != 0;
  size_t chunk = data[0] >> 1;
  std::vector<std::byte> input;
  if (preface) {
    for (char c : kPreface) input.push_back(static_cast<std::byte>(c));
  }
  for (size_t i = 1; i < size; ++i) input.push_back(static_cast<std::byte>(data[i]));
  if (chunk == 0) chunk = input.size() + 1;

  base::SimulatedClock clock;
  EchoEvents events;
  http2::H2Options options;
  options.max_frame_size = 16384;
  auto conn_or = http2::H2Conn::Create(http2::H2Role::kServer, options, events, clock);
  FUZZ_CHECK(conn_or.ok());
  http2::H2Conn& conn = **conn_or;
  events.conn = &conn;
  Drain(conn);

  std::span<const std::byte> rest(input);
  bool failed = false;
  while (!rest.empty()) {
    auto piece = rest.first(std::min(chunk, rest.size()));
    rest = rest.subspan(piece.size());
    Status st = conn.Feed(piece);
    if (!st.ok()) {
      // Dead() only reports keepalive death; a protocol error shows as
      // WantsRead() == false and a sticky error from Feed().
      FUZZ_CHECK(!conn.WantsRead());
      FUZZ_CHECK(!st.message().empty());
      FUZZ_CHECK(!conn.Feed({}).ok());
      failed = true;
      break;
    }
    for (auto id : events.ended) (void)conn.CloseWrite(id);
    events.ended.clear();
    Drain(conn);
  }
  Drain(conn);
  if (!failed && !conn.Dead()) {
    clock.Advance(std::chrono::seconds(11));
    (void)conn.OnTick(clock.Now());
    Drain(conn);
    (void)conn.GoAway();
    Drain(conn);
  }
  (void)conn.Closed();
  events.conn = nullptr;
  return 0;
}
