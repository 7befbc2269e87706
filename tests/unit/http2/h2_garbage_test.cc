// Malformed input never crashes: it yields an error (connection) or a
// stream reset (oversized header list).
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "tests/unit/http2/h2_pair.h"

namespace ambit::http2::testing {
namespace {

void PutInt(std::vector<std::byte>& out, uint8_t first_bits, int prefix, size_t v) {
  size_t max = (1u << prefix) - 1;
  if (v < max) {
    out.push_back(static_cast<std::byte>(first_bits | v));
    return;
  }
  out.push_back(static_cast<std::byte>(first_bits | max));
  v -= max;
  while (v >= 128) {
    out.push_back(static_cast<std::byte>((v % 128) + 128));
    v /= 128;
  }
  out.push_back(static_cast<std::byte>(v));
}

// HPACK literal header field without indexing, new name, no Huffman.
void PutLiteral(std::vector<std::byte>& out, std::string_view name, std::string_view value) {
  out.push_back(std::byte{0});
  PutInt(out, 0, 7, name.size());
  for (char c : name) out.push_back(static_cast<std::byte>(c));
  PutInt(out, 0, 7, value.size());
  for (char c : value) out.push_back(static_cast<std::byte>(c));
}

std::vector<std::byte> Frame(uint8_t type, uint8_t flags, uint32_t stream,
                             const std::vector<std::byte>& payload) {
  std::vector<std::byte> f;
  size_t n = payload.size();
  for (int shift : {16, 8, 0}) f.push_back(static_cast<std::byte>((n >> shift) & 0xff));
  f.push_back(static_cast<std::byte>(type));
  f.push_back(static_cast<std::byte>(flags));
  for (int shift : {24, 16, 8, 0}) f.push_back(static_cast<std::byte>((stream >> shift) & 0xff));
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

std::vector<std::byte> ConnectHeaders(size_t big_headers, size_t each) {
  std::vector<std::byte> block;
  PutLiteral(block, ":method", "CONNECT");
  PutLiteral(block, ":authority", "10.0.0.1:80");
  for (size_t i = 0; i < big_headers; ++i) {
    PutLiteral(block, "x-big-" + std::to_string(i), std::string(each, 'a'));
  }
  return Frame(0x1, 0x4 | 0x1, 1, block);  // HEADERS, END_HEADERS|END_STREAM
}

TEST_CASE("a single 100 KiB header field is a connection error") {
  H2Pair p;
  REQUIRE(p.Pump().ok());
  Status st = p.server->Feed(ConnectHeaders(1, 100u << 10));
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).find("HTTP/2") != std::string::npos);
  CHECK(std::string(st.message()).find("COMPRESSION_ERROR") != std::string::npos);
  CHECK(p.server_events.headers.empty());
  // A GOAWAY went out and later input is refused with the same error.
  auto out = p.server->TakeOutput();
  REQUIRE(out.size() >= 17);
  CHECK(static_cast<int>(out[3]) == 0x7);
  CHECK(p.server->Feed(AsBytes("more")).code() == st.code());
  CHECK_FALSE(p.server->WantsRead());
}

TEST_CASE("a 100 KiB header list (many fields) resets the stream only") {
  H2Pair p;
  REQUIRE(p.Pump().ok());
  REQUIRE(p.server->Feed(ConnectHeaders(20, 5u << 10)).ok());
  CHECK(p.server_events.headers.empty());
  CHECK(p.server_events.closed.count(1) == 1);
  // RST_STREAM(REFUSED_STREAM) on stream 1 is in the output.
  auto out = p.server->TakeOutput();
  bool saw_rst = false;
  for (const FrameInfo& f : ScanFrames(out)) {
    if (f.type == 0x3 && f.stream == 1) {
      saw_rst = static_cast<uint32_t>(out[f.offset + 12]) == kH2RefusedStream;
    }
  }
  CHECK(saw_rst);
  // The connection itself is still usable.
  CHECK(p.server->WantsRead());
}

TEST_CASE("random bytes instead of a preface are rejected") {
  std::mt19937 rng(12345);
  int errors = 0;
  constexpr int kRuns = 2000;
  for (int i = 0; i < kRuns; ++i) {
    base::SimulatedClock clock;
    Recorder r;
    auto server = H2Conn::Create(H2Role::kServer, {}, r, clock).value();
    r.conn = server.get();
    std::vector<std::byte> junk(1 + rng() % 300);
    for (auto& b : junk) b = static_cast<std::byte>(rng());
    if (!server->Feed(junk).ok()) ++errors;
    (void)server->TakeOutput();
  }
  CHECK(errors >= kRuns * 95 / 100);
}

TEST_CASE("random frames after a valid preface never crash either side") {
  std::mt19937 rng(777);
  int errors = 0;
  constexpr int kRuns = 2000;
  for (int i = 0; i < kRuns; ++i) {
    H2Pair p;
    REQUIRE(p.Pump().ok());
    // Random frame header with a plausible length and random payload.
    std::vector<std::byte> payload(rng() % 200);
    for (auto& b : payload) b = static_cast<std::byte>(rng());
    auto frame = Frame(static_cast<uint8_t>(rng() % 12), static_cast<uint8_t>(rng()),
                       rng() % 4, payload);
    if (rng() % 4 == 0) {
      for (size_t k = 0; k < frame.size(); k += 1 + rng() % 8) frame[k] = std::byte(rng());
    }
    H2Conn& target = (i % 2 == 0) ? *p.server : *p.client;
    Status st = target.Feed(frame);
    (void)target.TakeOutput();
    if (!st.ok()) {
      ++errors;
      CHECK(target.Feed(frame).code() == st.code());  // sticky
    }
  }
  CHECK(errors > kRuns / 4);
}

TEST_CASE("input split at every byte boundary is reassembled") {
  H2Pair p;
  auto id = p.client->SubmitConnect("10.0.0.2:8080", {{"baggage", "service.name=a"}});
  REQUIRE(id.ok());
  auto payload = Pattern(40000, 11);
  REQUIRE(p.client->Write(*id, payload).ok());
  REQUIRE(p.client->CloseWrite(*id).ok());
  auto bytes = p.client->TakeOutput();
  for (size_t i = 0; i < bytes.size(); ++i) {
    REQUIRE(p.server->Feed(std::span<const std::byte>(&bytes[i], 1)).ok());
  }
  REQUIRE(p.Pump().ok());
  CHECK(*FindHeader(p.server_events.headers[*id], "baggage") == "service.name=a");
  CHECK(p.server_events.data[*id] == payload);
  CHECK(p.server_events.ended.count(*id) == 1);
}

TEST_CASE("a server rejects a client preface that is not HTTP/2") {
  base::SimulatedClock clock;
  Recorder r;
  auto server = H2Conn::Create(H2Role::kServer, {}, r, clock).value();
  Status st = server->Feed(AsBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(st.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(st.message()).find("ALPN h2") != std::string::npos);
}

}  // namespace
}  // namespace ambit::http2::testing
