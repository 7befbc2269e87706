#include "common/hbone/pool.h"

#include <algorithm>

#include "common/base/error.h"
#include "common/base/log.h"

namespace ambit::hbone {

std::string PoolKey::Hash() const {
  std::string out;
  out.reserve(128);
  auto add = [&out](const std::string& s) {
    out += std::to_string(s.size());
    out.push_back(':');
    out += s;
  };
  add(source_identity);
  out += std::to_string(destination_identities.size());
  for (const auto& d : destination_identities) add(d);
  add(next_hop);
  add(source_ip);
  return out;
}

HbonePool::HbonePool(io::Loop& loop, PoolOptions options) : loop_(loop), options_(options) {}

HbonePool::~HbonePool() {
  *alive_ = false;
  sweeper_scope_->Cancel();
  for (auto& [key, e] : entries_) {
    for (auto& c : e.conns) {
      c->SetOnClosed(nullptr);
      c->Close(absl::CancelledError("HBONE pool shut down"));
    }
  }
}

size_t HbonePool::connections() const {
  size_t n = 0;
  for (auto& [k, e] : entries_) n += e.conns.size();
  return n;
}

std::shared_ptr<HboneConn> HbonePool::FindUsable(Entry& e) {
  for (auto& c : e.conns) {
    if (c->Usable(options_.max_streams_per_conn)) return c;
  }
  return nullptr;
}

void HbonePool::Remove(const std::string& key, HboneConn* conn) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  auto& conns = it->second.conns;
  conns.erase(std::remove_if(conns.begin(), conns.end(),
                             [conn](const auto& c) { return c.get() == conn; }),
              conns.end());
  if (conns.empty() && !it->second.dialing) entries_.erase(it);
  stats_.open = connections();
}

io::Task<StatusOr<std::shared_ptr<HboneConn>>> HbonePool::Checkout(PoolKey key, DialFn dial) {
  const std::string hash = key.Hash();
  for (int attempt = 0;; ++attempt) {
    if (shutdown_) co_return absl::UnavailableError("HBONE pool is shutting down");
    Entry& e = entries_[hash];
    if (auto c = FindUsable(e)) {
      ++stats_.reused;
      c->MarkUsed();
      co_return c;
    }
    if (e.dialing) {
      // One dialer per key; wait for it, then look again.
      std::shared_ptr<io::Event> done = e.dial_done;
      Status st = co_await done->Wait({.timeout = std::chrono::seconds(30)});
      if (!st.ok()) co_return st;
      continue;
    }
    e.dialing = true;
    e.dial_done = std::make_shared<io::Event>(loop_);
    std::shared_ptr<io::Event> done = e.dial_done;
    std::shared_ptr<bool> alive = alive_;
    ++stats_.dials;
    auto conn = co_await dial();
    if (!*alive) co_return absl::CancelledError("HBONE pool destroyed during dial");
    Entry& after = entries_[hash];  // the map may have rehashed meanwhile
    after.dialing = false;
    done->Set();
    if (!conn.ok()) {
      ++stats_.dial_failures;
      if (after.conns.empty()) entries_.erase(hash);
      co_return conn.status();
    }
    std::shared_ptr<HboneConn> c = *conn;
    c->SetOnClosed([this, hash, alive](HboneConn* closed) {
      if (*alive) Remove(hash, closed);
    });
    after.conns.push_back(c);
    stats_.open = connections();
    c->MarkUsed();
    if (c->Usable(options_.max_streams_per_conn)) co_return c;
    if (attempt > 3) co_return absl::ResourceExhaustedError("new HBONE connection has no stream capacity");
  }
}

io::Task<StatusOr<std::unique_ptr<HboneStream>>> HbonePool::Connect(PoolKey key, DialFn dial,
                                                                    std::string authority,
                                                                    http2::H2Headers headers,
                                                                    base::Duration timeout) {
  Status last = base::WithReason(absl::UnavailableError("no HBONE connection"),
                                 base::ErrorReason::kConnClosed);
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    auto conn = co_await Checkout(key, dial);
    if (!conn.ok()) co_return conn.status();
    auto stream = co_await OpenConnect(**conn, authority, headers, timeout);
    const base::ErrorReason why = base::ReasonOf(stream.status());
    if (stream.ok() ||
        (why != base::ErrorReason::kStreamRefused && why != base::ErrorReason::kConnClosed)) {
      co_return stream;
    }
    last = stream.status();
    ++stats_.open_retries;
    AMBIT_LOG(kDebug, "pool", "CONNECT {} refused by {} ({}); retrying on another connection",
              authority, key.next_hop, last.ToString());
  }
  co_return last;
}

void HbonePool::SweepIdle() {
  const base::MonoTime now = loop_.Now();
  std::vector<std::shared_ptr<HboneConn>> idle;
  for (auto& [key, e] : entries_) {
    for (auto& c : e.conns) {
      if (c->active_streams() == 0 && now - c->last_used() >= options_.idle_timeout) {
        idle.push_back(c);
      }
    }
  }
  for (auto& c : idle) {
    ++stats_.evicted_idle;
    AMBIT_LOG(kDebug, "pool", "closing idle HBONE connection to {}", c->peer_address().ToString());
    c->Drain();
    c->Close(absl::CancelledError("idle HBONE connection released"));
  }
}

io::Task<void> HbonePool::Sweeper(HbonePool* pool, std::shared_ptr<io::CancelScope> scope,
                                  std::shared_ptr<bool> alive) {
  io::Loop& loop = pool->loop_;  // the loop outlives every task on it
  base::Duration interval = pool->options_.sweep_interval;
  for (;;) {
    Status st = co_await loop.Sleep(interval, {.scope = scope.get()});
    if (!st.ok() || !*alive) co_return;
    pool->SweepIdle();
  }
}

void HbonePool::Start() {
  if (sweeper_running_) return;
  sweeper_running_ = true;
  loop_.Spawn(Sweeper(this, sweeper_scope_, alive_));
}

void HbonePool::Shutdown() {
  shutdown_ = true;
  sweeper_scope_->Cancel();
  for (auto& [key, e] : entries_) {
    for (auto& c : e.conns) c->Drain();
  }
}

}  // namespace ambit::hbone
