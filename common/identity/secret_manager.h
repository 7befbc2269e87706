// SecretManager: the workload certificate cache of the control thread
// (ISTIO-COMPAT §6.2). One entry per Identity; fetches from a CertSource with
// priorities (RealTime > Warmup > Background) and at most `max_concurrent`
// calls at once; refreshes at half-life; on failure retries with jittered
// exponential backoff while an unexpired certificate keeps being served.
//
// Thread: the Loop's thread only (timers use the loop's clock, so tests drive
// it with io::TestLoop). Callbacks run on that thread.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/identity/cert_bundle.h"
#include "common/identity/cert_source.h"
#include "common/identity/identity.h"
#include "common/io/loop.h"
#include "common/io/task.h"

namespace ambit::identity {

enum class CertPriority : uint8_t { kBackground = 0, kWarmup = 1, kRealTime = 2 };
enum class CertState : uint8_t { kInitializing, kAvailable, kUnavailable };
std::string_view CertPriorityName(CertPriority p);
std::string_view CertStateName(CertState s);

struct SecretManagerOptions {
  size_t max_concurrent = 8;
  base::Duration initial_backoff = std::chrono::seconds(1);
  base::Duration max_backoff = std::chrono::seconds(150);
  double jitter = 0.2;  // each retry delay is scaled by a factor in [1 - j, 1 + j]
  uint64_t seed = 0;    // jitter RNG seed; 0 = random
};

struct GetOptions {
  // How long a caller waits for a first (or unexpired) certificate across
  // retries. Zero: the outcome of the next fetch attempt, success or error.
  base::Duration max_wait = std::chrono::seconds(5);
};

using CertPtr = std::shared_ptr<const CertBundle>;
using GetCallback = absl::AnyInvocable<void(StatusOr<CertPtr>)>;
using CertSubscriber = absl::AnyInvocable<void(const Identity&, const CertPtr&)>;

// What the admin dump shows for one identity.
struct CertStatusDump {
  Identity identity;
  CertState state;
  CertPriority priority;            // of the pending/next fetch
  CertPtr cert;                     // current certificate (may be set while refreshing fails)
  std::vector<std::string> chain_pems;  // leaf first, then intermediates
  std::vector<std::string> root_pems;   // the trust bundle, one PEM per root
  std::string serial_hex;
  base::WallTime valid_from{};
  base::WallTime expiration_time{};
  std::string last_error;  // empty if the last attempt succeeded
  int consecutive_failures = 0;
  std::optional<base::MonoTime> next_fetch;  // scheduled refresh or retry
};

class SecretManager {
 public:
  SecretManager(io::Loop& loop, CertSource& source, SecretManagerOptions options = {});
  ~SecretManager();  // waiters get Cancelled; in-flight results are dropped
  SecretManager(const SecretManager&) = delete;
  SecretManager& operator=(const SecretManager&) = delete;

  // Callback form. With an unexpired certificate, `done` runs inline; else
  // the identity is fetched at RealTime priority and `done` runs later.
  void Get(const Identity& id, GetCallback done, GetOptions options = {});
  // Task form of Get (must be awaited on the loop thread).
  io::Task<StatusOr<CertPtr>> Get(Identity id, GetOptions options = {});
  // Starts fetching (or raises the priority of a queued fetch). No-op while a
  // certificate is available.
  void Prefetch(const Identity& id, CertPriority priority = CertPriority::kWarmup);
  // Drops the identity: no more refreshes; its waiters get Cancelled.
  void Forget(const Identity& id);

  // Called on every new certificate (first one and each rotation).
  uint64_t Subscribe(CertSubscriber fn);
  void Unsubscribe(uint64_t id);

  // Unexpired certificate, if any (no fetch is started).
  CertPtr Lookup(const Identity& id) const;
  std::vector<CertStatusDump> Dump() const;
  std::optional<CertStatusDump> DumpOne(const Identity& id) const;

  size_t in_flight() const { return in_flight_; }
  size_t queued() const { return queue_.size(); }
  size_t size() const { return entries_.size(); }
  uint64_t fetches_started() const { return fetches_started_; }

 private:
  struct Entry;
  struct Waiter;
  using QueueKey = std::pair<int, uint64_t>;  // (-priority, sequence)

  Entry& Ensure(const Identity& id);
  Entry* Find(const Identity& id) const;
  bool Usable(const Entry& e) const;
  void Enqueue(Entry& e, CertPriority p);
  void Dequeue(Entry& e);
  void Pump();
  void StartFetch(Entry& e);
  void OnFetched(const Identity& id, uint64_t fetch_id, StatusOr<CertBundle> result);
  void OnSuccess(Entry& e, CertBundle bundle);
  void OnFailure(Entry& e, const Status& error);
  void ScheduleAt(Entry& e, base::WallTime when, bool retry);
  void ScheduleAfter(Entry& e, base::Duration delay, bool retry);
  void OnTimer(const Identity& id);
  void AddWaiter(Entry& e, GetCallback done, const GetOptions& options);
  void OnWaiterTimeout(const Identity& id, uint64_t waiter_id);
  void FailWaiters(Entry& e, const Status& error, bool all);
  base::Duration NextBackoff(int failures);
  CertStatusDump MakeDump(const Entry& e) const;

  io::Loop& loop_;
  CertSource& source_;
  SecretManagerOptions options_;
  std::mt19937_64 rng_;
  std::shared_ptr<SecretManager*> alive_;  // callbacks hold a weak_ptr to this
  std::unordered_map<Identity, std::unique_ptr<Entry>> entries_;
  std::map<QueueKey, Identity> queue_;
  std::map<uint64_t, CertSubscriber> subscribers_;
  uint64_t next_seq_ = 1;
  size_t in_flight_ = 0;
  uint64_t fetches_started_ = 0;
};

}  // namespace ambit::identity
