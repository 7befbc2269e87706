// HbonePool: the outbound HBONE connections of one worker (ISTIO-COMPAT §1.4).
//
// Keyed by {source identity, acceptable destination identities, next hop,
// source IP}. Checkout returns a connection that can take one more stream;
// if none can, exactly one caller per key dials while the others wait for
// it (connection storms are throttled). A connection at its stream limit
// (min(max_streams, peer's MAX_CONCURRENT_STREAMS)) makes the next caller
// dial another; one that saw GOAWAY is never reused; connections without
// streams for `idle_timeout` are closed by a sweeper.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/base/status.h"
#include "common/hbone/conn.h"
#include "common/hbone/stream.h"
#include "common/io/event.h"
#include "common/io/loop.h"
#include "common/io/task.h"

namespace ambit::hbone {

struct PoolKey {
  std::string source_identity;
  std::vector<std::string> destination_identities;  // sorted by the caller or not: order matters
  std::string next_hop;   // "10.0.2.5:15008"
  std::string source_ip;
  std::string Hash() const;  // deep key, used as the map key
};

struct PoolOptions {
  size_t max_streams_per_conn = 100;
  base::Duration idle_timeout = std::chrono::minutes(5);
  base::Duration sweep_interval = std::chrono::seconds(30);
};

struct PoolStats {
  uint64_t dials = 0;
  uint64_t dial_failures = 0;
  uint64_t reused = 0;
  uint64_t open_retries = 0;  // CONNECTs retried on another connection
  uint64_t evicted_idle = 0;
  size_t open = 0;
};

class HbonePool {
 public:
  // Dials a new connection for the key (TCP connect in the pod netns, TLS, h2).
  using DialFn = std::function<io::Task<StatusOr<std::shared_ptr<HboneConn>>>()>;

  HbonePool(io::Loop& loop, PoolOptions options);
  ~HbonePool();
  HbonePool(const HbonePool&) = delete;
  HbonePool& operator=(const HbonePool&) = delete;

  io::Task<StatusOr<std::shared_ptr<HboneConn>>> Checkout(PoolKey key, DialFn dial);

  // Checkout + OpenConnect, owning the retry: a CONNECT the peer never
  // processed (ErrorReason kStreamRefused: REFUSED_STREAM, GOAWAY, or the
  // connection ended before an answer — a destination agent draining) goes
  // on another connection, up to `kOpenAttempts` tries. Other failures are
  // returned as they are (with their reason).
  static constexpr int kOpenAttempts = 3;
  io::Task<StatusOr<std::unique_ptr<HboneStream>>> Connect(PoolKey key, DialFn dial,
                                                           std::string authority,
                                                           http2::H2Headers headers,
                                                           base::Duration timeout);

  // Closes idle connections now (also runs periodically once Start()ed).
  void SweepIdle();
  void Start();     // spawns the idle sweeper
  void Shutdown();  // drains every connection, stops the sweeper
  const PoolStats& stats() const { return stats_; }
  size_t connections() const;

 private:
  struct Entry {
    std::vector<std::shared_ptr<HboneConn>> conns;
    bool dialing = false;
    std::shared_ptr<io::Event> dial_done;  // set when the current dial ends
  };
  static io::Task<void> Sweeper(HbonePool* pool, std::shared_ptr<io::CancelScope> scope,
                                std::shared_ptr<bool> alive);
  std::shared_ptr<HboneConn> FindUsable(Entry& e);
  void Remove(const std::string& key, HboneConn* conn);

  io::Loop& loop_;
  PoolOptions options_;
  std::unordered_map<std::string, Entry> entries_;
  PoolStats stats_;
  // Shared with the sweeper task so the scope outlives the pool while the
  // task's cancelled sleep completes.
  std::shared_ptr<io::CancelScope> sweeper_scope_ = std::make_shared<io::CancelScope>();
  bool sweeper_running_ = false;
  bool shutdown_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace ambit::hbone
