// Per-connection bookkeeping shared by the outbound and inbound paths:
// Istio TCP metrics (counted as bytes flow), the access log line at the end
// (ISTIO-COMPAT §8.3), and the worker's registry of live connections (for
// pod teardown, policy re-evaluation and the admin dump).
#pragma once

#include "common/base/log.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/telemetry/tcp_metrics.h"
#include "agent/proxy/agent_state.h"
#include "common/telemetry/peer_labels.h"
#include "common/hbone/relay.h"
#include "common/io/cancel.h"
#include "common/net/address.h"

namespace ambit::agent {

// The Istio label model and TCP metric families come from common/telemetry.
using telemetry::ConnectionLabels;
using telemetry::PeerLabels;
using telemetry::TcpMetrics;
using telemetry::LabelsFor;
using telemetry::BaggageFor;
using telemetry::LabelsFromBaggage;
using telemetry::SetServiceLabels;
using telemetry::kFlagNone;
using telemetry::kFlagDeny;
using telemetry::kFlagConnect;
using telemetry::kFlagTlsFailure;
using telemetry::kFlagH2HandshakeFailure;
using telemetry::kFlagNetworkPolicy;
using telemetry::kFlagIdentityError;

enum class Direction : uint8_t { kOutbound, kInbound };

struct ConnPeers;
// The part of an inbound connection's facts both inbound paths (15008 and
// 15006) share: pod, source workload (may be null), local workload, labels
// (reporter destination, destination principal = the pod's identity).
ConnPeers InboundPeersBase(const PodContext& pod, const mesh::Workload& local,
                           const mesh::Workload* src_wl);

// What the connections of one pod to one destination share: the identity
// fields of the access log (ISTIO-COMPAT §8.3) and the istio_tcp_* labels
// with their series resolved once. Immutable; built on a PeersCache miss.
struct ConnPeers {
  Direction direction = Direction::kOutbound;
  bool mtls = false;
  std::string pod_uid;              // the captured pod these connections belong to
  std::string hbone_addr;           // CONNECT authority, if HBONE
  std::string dst_service;          // hostname
  std::string src_identity, dst_identity;
  std::string src_workload, src_namespace, dst_workload, dst_namespace;
  std::string src_cluster, dst_cluster;
  std::string dst_workload_uid;     // inbound: re-authorization looks it up
  std::optional<identity::Identity> peer_identity;  // inbound HBONE
  ConnectionLabels labels;
  // The pod whose address is part of the cache key: alive while the entry is.
  std::shared_ptr<const void> pod_pin;
  // Series of `labels` on the worker's shard (set by PeersCache).
  metrics::Counter* opened = nullptr;
  metrics::Counter* received = nullptr;
  metrics::Counter* sent = nullptr;
  metrics::Counter* closed_ok = nullptr;  // response_flags "-"
};

// Per worker: ConnPeers by destination, so a new connection to a known
// destination copies no strings and hashes no labels. Keys are pointers into
// the current state (pod, workloads, service) plus a string (authority,
// peer identity): Clear() on every state change. Bounded.
class PeersCache {
 public:
  struct Key {
    int kind = 0;
    const void* a = nullptr;
    const void* b = nullptr;
    const void* c = nullptr;
    const void* d = nullptr;
    std::string s;
    bool operator==(const Key&) const = default;
  };
  PeersCache(TcpMetrics& metrics, size_t shard) : metrics_(metrics), shard_(shard) {}
  template <typename Build>
  std::shared_ptr<const ConnPeers> Get(const Key& key, Build&& build) {
    auto it = map_.find(key);
    if (it != map_.end()) return it->second;
    return Put(key, build());
  }
  void Clear() { map_.clear(); }
  size_t size() const { return map_.size(); }
  static constexpr size_t kMaxEntries = 1024;

 private:
  struct Hash {
    size_t operator()(const Key& k) const;
  };
  std::shared_ptr<const ConnPeers> Put(const Key& key, ConnPeers peers);
  TcpMetrics& metrics_;
  size_t shard_;
  std::unordered_map<Key, std::shared_ptr<const ConnPeers>, Hash> map_;
};

class ConnTracker;

// Lives as long as the connection (a few hundred bytes: the shared peers,
// the two addresses, the counters).
class ConnectionRecorder final : public hbone::RelayObserver {
 public:
  ConnectionRecorder(TcpMetrics& metrics, size_t shard, ConnTracker& tracker,
                     std::shared_ptr<const ConnPeers> peers, const net::SocketAddress& src,
                     const net::SocketAddress& dst, io::CancelScope* scope);
  ~ConnectionRecorder() override;
  ConnectionRecorder(const ConnectionRecorder&) = delete;
  ConnectionRecorder& operator=(const ConnectionRecorder&) = delete;

  void OnUp(size_t n) override;
  void OnDown(size_t n) override;
  // Ends the connection: metrics close (with response flags) and the access
  // log line ("connection complete", error= when failed).
  void Finish(std::string_view response_flags, const Status& status);
  // The fields of one access-log event, as views into the shared peers and
  // into the strings below (formatted addresses and numbers), so building a
  // line copies each value once, into the line itself.
  struct AccessFields {
    std::string src_addr, dst_addr, bytes_sent, bytes_recv, duration;
    std::array<base::LogField, 24> list;
    size_t n = 0;
    void Add(std::string_view key, std::string_view value) { list[n++] = {key, value}; }
    std::span<const base::LogField> span() const { return {list.data(), n}; }
  };
  // src.*, dst.* and direction fields of both access-log events.
  void IdentityFields(AccessFields& out) const;

  const ConnPeers& peers() const { return *peers_; }
  // Downstream peer; outbound: next hop (ip:15008 or target), inbound: our 15008/15006 address.
  const net::SocketAddress& src() const { return src_; }
  const net::SocketAddress& dst() const { return dst_; }
  // Inbound only: what authorization decided on (re-checked on policy change).
  const std::optional<AuthzRequest>& authz() const { return authz_; }
  void set_authz(const AuthzRequest& r) { authz_ = r; }
  io::CancelScope* scope() const { return scope_; }
  void set_late_rejected(std::string reason) { late_rejection_ = std::move(reason); }
  const std::string& late_rejection() const { return late_rejection_; }
  uint64_t bytes_sent() const { return sent_; }
  uint64_t bytes_recv() const { return recv_; }

 private:
  void CountClose(std::string_view response_flags);

  TcpMetrics& metrics_;
  size_t shard_;
  ConnTracker& tracker_;
  std::shared_ptr<const ConnPeers> peers_;
  net::SocketAddress src_, dst_;
  std::optional<AuthzRequest> authz_;
  io::CancelScope* scope_;
  std::list<ConnectionRecorder*>::iterator pos_;
  base::MonoTime start_;
  uint64_t sent_ = 0;  // bytes written back to the downstream
  uint64_t recv_ = 0;  // bytes read from the downstream
  bool finished_ = false;
  std::string late_rejection_;
};

// What the admin dump shows of a live connection.
struct ConnSummary {
  std::string pod_uid;
  Direction direction;
  std::string src, original_dst, actual_dst;
  bool hbone = false;
};

// Live connections of one worker. Mutated on the loop thread only; the
// summary list is readable from the control thread (admin) under a mutex
// that only connection open/close takes on the worker.
class ConnTracker {
 public:
  std::list<ConnectionRecorder*>::iterator Add(ConnectionRecorder* r) {
    live_count_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    return live_.insert(live_.end(), r);
  }
  void Remove(std::list<ConnectionRecorder*>::iterator it) {
    live_count_.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    live_.erase(it);
  }
  // Thread-safe copy for the admin dump.
  std::vector<ConnSummary> Summaries() const;
  size_t live_count() const { return live_count_.load(std::memory_order_relaxed); }
  const std::list<ConnectionRecorder*>& live() const { return live_; }
  // Cancels every connection of a pod (pod removed: immediate teardown).
  size_t CancelPod(const std::string& uid);
  // Re-authorizes inbound connections against a new state; denied ones are
  // cancelled and logged as late rejections. Returns how many were closed.
  size_t Reauthorize(const AgentState& state);

 private:
  mutable std::mutex mu_;
  std::list<ConnectionRecorder*> live_;
  std::atomic<size_t> live_count_{0};
};

// Early failures (before a connection has labels): WARN "connection failed".
void LogConnectionFailed(Direction d, const net::SocketAddress& src, const net::SocketAddress& dst,
                         const Status& error);

}  // namespace ambit::agent
