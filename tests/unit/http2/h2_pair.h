// Test helper: a client and a server H2Conn wired back-to-back in memory,
// with event recorders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/http2/h2_conn.h"

namespace ambit::http2::testing {

inline std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

inline std::vector<std::byte> Pattern(size_t n, uint32_t seed) {
  std::vector<std::byte> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::byte>(x);
  }
  return v;
}

inline uint64_t Fnv1a(std::span<const std::byte> data) {
  uint64_t h = 1469598103934665603ull;
  for (std::byte b : data) {
    h ^= static_cast<uint8_t>(b);
    h *= 1099511628211ull;
  }
  return h;
}

struct FrameInfo {
  size_t length;
  int type;
  int flags;
  uint32_t stream;
  size_t offset;  // of the frame header in the scanned buffer
};

// Splits serialized frames (after the client magic, if `skip` says so).
inline std::vector<FrameInfo> ScanFrames(std::span<const std::byte> b, size_t skip = 0) {
  std::vector<FrameInfo> out;
  auto u8 = [&](size_t i) { return static_cast<uint32_t>(b[i]); };
  for (size_t i = skip; i + 9 <= b.size();) {
    size_t len = (u8(i) << 16) | (u8(i + 1) << 8) | u8(i + 2);
    uint32_t sid = ((u8(i + 5) & 0x7f) << 24) | (u8(i + 6) << 16) | (u8(i + 7) << 8) | u8(i + 8);
    out.push_back({len, static_cast<int>(u8(i + 3)), static_cast<int>(u8(i + 4)), sid, i});
    i += 9 + len;
  }
  return out;
}

struct Recorder : H2Events {
  H2Conn* conn = nullptr;
  bool auto_consume = true;
  std::map<H2StreamId, H2Headers> headers;
  std::map<H2StreamId, std::vector<std::byte>> data;
  std::map<H2StreamId, size_t> unconsumed;
  std::set<H2StreamId> ended;
  std::map<H2StreamId, uint32_t> resets;
  std::map<H2StreamId, uint32_t> closed;
  std::vector<std::pair<uint32_t, H2StreamId>> goaways;
  std::map<H2StreamId, size_t> drained;  // last queued value reported
  int ping_acks = 0;

  void OnStreamHeaders(H2StreamId id, const H2Headers& h) override { headers[id] = h; }
  void OnStreamData(H2StreamId id, std::span<const std::byte> d) override {
    auto& buf = data[id];
    buf.insert(buf.end(), d.begin(), d.end());
    if (auto_consume) {
      (void)conn->Consume(id, d.size());
    } else {
      unconsumed[id] += d.size();
    }
  }
  void OnStreamEnd(H2StreamId id) override { ended.insert(id); }
  void OnStreamReset(H2StreamId id, uint32_t code) override { resets[id] = code; }
  void OnStreamClosed(H2StreamId id, uint32_t code) override { closed[id] = code; }
  void OnGoAway(uint32_t code, H2StreamId last) override { goaways.emplace_back(code, last); }
  void OnStreamDrained(H2StreamId id, size_t queued) override { drained[id] = queued; }
  void OnPingAck() override { ++ping_acks; }
};

struct H2Pair {
  explicit H2Pair(H2Options client_opts = {}, H2Options server_opts = {}) {
    client = H2Conn::Create(H2Role::kClient, client_opts, client_events, clock).value();
    server = H2Conn::Create(H2Role::kServer, server_opts, server_events, clock).value();
    client_events.conn = client.get();
    server_events.conn = server.get();
  }

  // Moves bytes both ways until neither side has output (bounded).
  Status Pump(int max_rounds = 10000) {
    for (int i = 0; i < max_rounds; ++i) {
      std::vector<std::byte> c2s = client->TakeOutput();
      if (!c2s.empty()) RETURN_IF_ERROR(server->Feed(c2s));
      std::vector<std::byte> s2c = server->TakeOutput();
      if (!s2c.empty()) RETURN_IF_ERROR(client->Feed(s2c));
      if (c2s.empty() && s2c.empty()) return absl::OkStatus();
    }
    return absl::DeadlineExceededError("pump did not settle");
  }

  base::SimulatedClock clock;
  Recorder client_events;
  Recorder server_events;
  std::unique_ptr<H2Conn> client;
  std::unique_ptr<H2Conn> server;
};

}  // namespace ambit::http2::testing
