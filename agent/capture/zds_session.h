// ZdsSession: the ZDS rules of ISTIO-COMPAT §4.1 as a state machine without
// I/O. Feed it each received datagram (bytes + owned fds); it calls the
// ZdsHandler and returns the ack text. Pod state outlives connections (a new
// connection's snapshot decides which pods survive).
//
// Threads: HandleDatagram/OnConnected/RetryDue on one thread (the ZdsClient
// I/O thread); the read-only accessors are safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/capture/zds_codec.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/net/fd.h"
#include "common/net/netns.h"

namespace ambit::agent::capture {

struct PodAdded {
  std::string uid;
  std::string name;
  std::string namespace_;
  std::string service_account;
  const net::NetnsHandle& netns;  // borrowed: Dup() it to keep it
};
struct PodRemoved {
  std::string uid;
};
struct SnapshotDone {
  size_t pods = 0;  // pods known after the snapshot (Up + Pending)
};

// Implemented by the agent: a pod's listener set comes and goes with these.
// A failed OnPodAdded is NACKed with its message and retried later.
class ZdsHandler {
 public:
  virtual ~ZdsHandler() = default;
  virtual Status OnPodAdded(const PodAdded& pod) = 0;
  virtual Status OnPodRemoved(const PodRemoved& pod) = 0;
  virtual void OnSnapshotDone(const SnapshotDone& done) = 0;
};

enum class ZdsPodState { kPending, kUp };
std::string_view ZdsPodStateName(ZdsPodState s);  // "Pending" | "Up"

struct ZdsPodEntry {
  std::string uid;
  ZdsPodState state = ZdsPodState::kPending;
  ZdsWorkloadInfo info;
  net::NetnsHandle::Id netns;
};

struct ZdsCounters {
  uint64_t pods_added = 0;    // handler accepted an add (incl. retries, replacements)
  uint64_t pods_removed = 0;  // handler told to remove (Del, snapshot sweep, replace)
  uint64_t protocol_errors = 0;
  uint64_t nacks = 0;
  uint64_t add_failures = 0;  // handler refused an add (first try or retry)
};

// What to answer, and whether the connection must be dropped afterwards.
struct ZdsReply {
  std::string ack_error;  // "" = ack
  bool protocol_error = false;
};

class ZdsSession {
 public:
  ZdsSession(ZdsHandler& handler, base::Clock& clock,
             base::Duration retry_interval = std::chrono::seconds(5));

  void OnConnected();  // new connection: expect a fresh snapshot
  ZdsReply HandleDatagram(std::string_view bytes, std::vector<net::Fd> fds);
  // Counts a transport-level protocol error (e.g. MSG_TRUNC) seen by the client.
  ZdsReply TransportError(const Status& s);
  // Retries pending adds that are due; returns the next due time if any remain.
  std::optional<base::MonoTime> RetryDue();

  bool snapshot_done() const;  // on the current connection
  bool ready() const;          // a snapshot was received and nothing is pending
  ZdsCounters counters() const;
  std::vector<ZdsPodEntry> Pods() const;
  // {"<uid>": {"state": "Up", "info": {"name":..,"namespace":..,"serviceAccount":..}}}
  std::string WorkloadStateJson() const;

 private:
  struct Pod {
    ZdsPodState state = ZdsPodState::kPending;
    ZdsWorkloadInfo info;
    std::optional<net::NetnsHandle> netns;
    base::MonoTime next_retry;
  };
  ZdsReply Dispatch(const ZdsRequest& r, std::vector<net::Fd> fds);
  ZdsReply OnAdd(const ZdsRequest& r, net::Fd fd);
  ZdsReply OnKeep(const ZdsRequest& r);
  ZdsReply OnDel(const ZdsRequest& r);
  ZdsReply OnSnapshotSent();
  // Calls the handler for a pending pod; marks it Up or schedules a retry.
  Status TryAdd(const std::string& uid, Pod& pod);
  Status Remove(const std::string& uid);
  ZdsReply Nack(std::string error, bool protocol_error);

  ZdsHandler& handler_;
  base::Clock& clock_;
  base::Duration retry_interval_;

  mutable std::mutex mu_;  // guards everything below for the accessors
  std::map<std::string, Pod> pods_;
  std::set<std::string> snapshot_uids_;
  bool snapshot_done_ = false;
  bool ever_snapshot_ = false;
  ZdsCounters counters_;
};

}  // namespace ambit::agent::capture
