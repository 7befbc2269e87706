#include "common/identity/secret_manager.h"

#include <algorithm>
#include <cmath>

#include "common/base/log.h"
#include "common/identity/ca_client.h"
#include "common/identity/cat.h"
#include "common/io/cancel.h"

namespace ambit::identity {
namespace {

using std::chrono::duration_cast;
using Seconds = std::chrono::duration<double>;

// Runs a callback on the loop at a given time; re-arming or destroying it
// cancels the previous shot. The sleeping task owns its slot, so the timer
// may be destroyed (even from inside its own callback) at any time.
class LoopTimer {
 public:
  explicit LoopTimer(io::Loop& loop) : loop_(loop) {}
  ~LoopTimer() { Cancel(); }
  LoopTimer(const LoopTimer&) = delete;
  LoopTimer& operator=(const LoopTimer&) = delete;

  void ArmAt(base::MonoTime when, absl::AnyInvocable<void()> fn) {
    Cancel();
    slot_ = std::make_shared<Slot>();
    slot_->fn = std::move(fn);
    loop_.Spawn(Run(loop_, when, slot_));
  }
  void Cancel() {
    if (!slot_) return;
    slot_->fn = nullptr;
    slot_->scope.Cancel();
    slot_.reset();
  }

 private:
  struct Slot {
    io::CancelScope scope;
    absl::AnyInvocable<void()> fn;
  };
  static io::Task<void> Run(io::Loop& loop, base::MonoTime when, std::shared_ptr<Slot> slot) {
    const Status s = co_await loop.SleepUntil(when, {.scope = &slot->scope});
    if (!s.ok() || !slot->fn) co_return;
    absl::AnyInvocable<void()> fn = std::move(slot->fn);
    slot->fn = nullptr;
    fn();
  }

  io::Loop& loop_;
  std::shared_ptr<Slot> slot_;
};

std::string SecondsText(base::Duration d) {
  return fmt::format("{:.1f}s", duration_cast<Seconds>(d).count());
}

}  // namespace

std::string_view CertPriorityName(CertPriority p) {
  switch (p) {
    case CertPriority::kBackground: return "Background";
    case CertPriority::kWarmup: return "Warmup";
    case CertPriority::kRealTime: return "RealTime";
  }
  return "?";
}

std::string_view CertStateName(CertState s) {
  switch (s) {
    case CertState::kInitializing: return "Initializing";
    case CertState::kAvailable: return "Available";
    case CertState::kUnavailable: return "Unavailable";
  }
  return "?";
}

struct SecretManager::Waiter {
  uint64_t id = 0;
  GetCallback done;
  bool until_next_attempt = false;
  std::unique_ptr<LoopTimer> timer;
};

struct SecretManager::Entry {
  Entry(io::Loop& loop, Identity i) : id(std::move(i)), timer(loop) {}
  Identity id;
  CertPriority priority = CertPriority::kBackground;  // of the pending/next fetch
  CertPtr cert;
  Status last_error;
  int failures = 0;
  bool fetching = false;
  uint64_t fetch_id = 0;
  std::optional<QueueKey> queued;
  std::optional<base::MonoTime> next_fetch;
  LoopTimer timer;
  std::vector<Waiter> waiters;
  uint64_t next_waiter = 1;
};

SecretManager::SecretManager(io::Loop& loop, CertSource& source, SecretManagerOptions options)
    : loop_(loop),
      source_(source),
      options_(options),
      rng_(options.seed != 0 ? options.seed : std::random_device{}()),
      alive_(std::make_shared<SecretManager*>(this)) {
  if (options_.max_concurrent == 0) options_.max_concurrent = 1;
}

SecretManager::~SecretManager() {
  alive_.reset();
  for (auto& [id, e] : entries_) {
    for (Waiter& w : e->waiters) {
      loop_.Post([done = std::move(w.done), uri = id.ToString()]() mutable {
        done(absl::CancelledError(Cat("secret manager shut down while waiting for ", uri)));
      });
    }
  }
}

// ---- public API ---------------------------------------------------------------

void SecretManager::Get(const Identity& id, GetCallback done, GetOptions options) {
  if (CertPtr cert = Lookup(id)) {
    done(std::move(cert));
    return;
  }
  Entry& e = Ensure(id);
  AddWaiter(e, std::move(done), options);
  Prefetch(id, CertPriority::kRealTime);
}

namespace {

struct GetState {
  std::optional<StatusOr<CertPtr>> result;
  std::coroutine_handle<> waiter;
};

struct GetAwaiter {
  SecretManager& manager;
  Identity id;
  GetOptions options;
  std::shared_ptr<GetState> state = std::make_shared<GetState>();

  GetAwaiter(SecretManager& m, Identity i, GetOptions o)
      : manager(m), id(std::move(i)), options(o) {}
  GetAwaiter(const GetAwaiter&) = delete;
  GetAwaiter& operator=(const GetAwaiter&) = delete;
  ~GetAwaiter() { state->waiter = nullptr; }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    manager.Get(
        id,
        [st = state](StatusOr<CertPtr> r) {
          st->result.emplace(std::move(r));
          if (std::coroutine_handle<> w = std::exchange(st->waiter, nullptr)) w.resume();
        },
        options);
    if (state->result.has_value()) return false;
    state->waiter = h;
    return true;
  }
  StatusOr<CertPtr> await_resume() { return std::move(*state->result); }
};

}  // namespace

io::Task<StatusOr<CertPtr>> SecretManager::Get(Identity id, GetOptions options) {
  co_return co_await GetAwaiter(*this, std::move(id), options);
}

void SecretManager::Prefetch(const Identity& id, CertPriority priority) {
  Entry& e = Ensure(id);
  if (Usable(e) && !e.queued && !e.fetching) return;  // refresh timer is armed
  if (e.fetching || (!e.queued && e.next_fetch)) {
    // In flight, or waiting out a backoff: the next attempt gets the priority.
    e.priority = std::max(e.priority, priority);
    return;
  }
  Enqueue(e, priority);
}

void SecretManager::Forget(const Identity& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  std::unique_ptr<Entry> e = std::move(it->second);
  entries_.erase(it);
  if (e->queued) queue_.erase(*e->queued);
  for (Waiter& w : e->waiters) {
    loop_.Post([done = std::move(w.done), uri = id.ToString()]() mutable {
      done(absl::CancelledError(Cat("certificate for ", uri, " was forgotten")));
    });
  }
  AMBIT_LOG(kDebug, "identity", "forgot certificate of {}", id.ToString());
  // An in-flight fetch still holds a CA slot until it returns; its result is dropped.
}

uint64_t SecretManager::Subscribe(CertSubscriber fn) {
  const uint64_t id = next_seq_++;
  subscribers_.emplace(id, std::move(fn));
  return id;
}

void SecretManager::Unsubscribe(uint64_t id) { subscribers_.erase(id); }

CertPtr SecretManager::Lookup(const Identity& id) const {
  Entry* e = Find(id);
  return e != nullptr && Usable(*e) ? e->cert : nullptr;
}

// ---- queue and fetches ----------------------------------------------------------

SecretManager::Entry& SecretManager::Ensure(const Identity& id) {
  auto [it, inserted] = entries_.try_emplace(id);
  if (inserted) it->second = std::make_unique<Entry>(loop_, id);
  return *it->second;
}

SecretManager::Entry* SecretManager::Find(const Identity& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : it->second.get();
}

bool SecretManager::Usable(const Entry& e) const {
  return e.cert != nullptr && e.cert->not_after > loop_.clock().WallNow();
}

void SecretManager::Enqueue(Entry& e, CertPriority p) {
  e.timer.Cancel();
  e.next_fetch.reset();
  if (e.queued) {
    if (p <= e.priority) return;
    const uint64_t seq = e.queued->second;
    queue_.erase(*e.queued);
    e.queued = QueueKey(-static_cast<int>(p), seq);
  } else {
    e.queued = QueueKey(-static_cast<int>(p), next_seq_++);
  }
  e.priority = p;
  queue_.emplace(*e.queued, e.id);
  Pump();
}

void SecretManager::Pump() {
  while (in_flight_ < options_.max_concurrent && !queue_.empty()) {
    auto it = queue_.begin();
    Entry* e = Find(it->second);
    queue_.erase(it);
    if (e == nullptr) continue;
    e->queued.reset();
    StartFetch(*e);
  }
}

void SecretManager::StartFetch(Entry& e) {
  e.fetching = true;
  e.fetch_id = next_seq_++;
  ++in_flight_;
  ++fetches_started_;
  AMBIT_LOG(kDebug, "identity", "fetching certificate for {} from {} ({})", e.id.ToString(),
            source_.name(), CertPriorityName(e.priority));
  std::weak_ptr<SecretManager*> weak = alive_;
  source_.Fetch(e.id, [weak, id = e.id, fid = e.fetch_id](StatusOr<CertBundle> r) mutable {
    if (std::shared_ptr<SecretManager*> self = weak.lock()) {
      (*self)->OnFetched(id, fid, std::move(r));
    }
  });
}

void SecretManager::OnFetched(const Identity& id, uint64_t fetch_id,
                              StatusOr<CertBundle> result) {
  --in_flight_;
  Entry* e = Find(id);
  if (e != nullptr && e->fetching && e->fetch_id == fetch_id) {
    e->fetching = false;
    const base::WallTime now = loop_.clock().WallNow();
    if (result.ok() && result->not_after <= now) {
      result = absl::FailedPreconditionError(
          Cat(source_.name(), " returned a certificate for ", id.ToString(),
              " that is already expired (check the clocks of this node and the CA)"));
    }
    if (result.ok()) {
      OnSuccess(*e, *std::move(result));
    } else {
      OnFailure(*e, result.status());
    }
  }
  Pump();
}

void SecretManager::OnSuccess(Entry& e, CertBundle bundle) {
  const base::WallTime now = loop_.clock().WallNow();
  CertPtr cert = std::make_shared<const CertBundle>(std::move(bundle));
  const bool rotated = e.cert != nullptr;
  e.cert = cert;
  e.last_error = absl::OkStatus();
  e.failures = 0;
  e.priority = CertPriority::kBackground;
  // Refresh at half-life; immediately if the certificate is not valid yet.
  const base::WallTime refresh = cert->not_before > now
                                     ? now
                                     : cert->not_before + (cert->not_after - cert->not_before) / 2;
  ScheduleAt(e, refresh, /*retry=*/false);
  AMBIT_LOG(kInfo, "identity", "{} certificate for {} (serial {}), refresh in {}",
            rotated ? "rotated" : "got", e.id.ToString(), cert->serial_hex,
            SecondsText(refresh - now));
  std::vector<Waiter> waiters = std::move(e.waiters);
  e.waiters.clear();
  const Identity id = e.id;  // `e` may be forgotten by the callbacks below
  for (Waiter& w : waiters) {
    if (w.timer) w.timer->Cancel();
    w.done(cert);
  }
  std::vector<uint64_t> subs;
  for (const auto& [sid, fn] : subscribers_) subs.push_back(sid);
  for (uint64_t sid : subs) {
    auto it = subscribers_.find(sid);
    if (it != subscribers_.end()) it->second(id, cert);
  }
}

void SecretManager::OnFailure(Entry& e, const Status& error) {
  ++e.failures;
  e.last_error = error;
  const base::Duration delay = NextBackoff(e.failures);
  ScheduleAfter(e, delay, /*retry=*/true);
  if (Usable(e)) {
    AMBIT_LOG(kWarn, "identity",
              "refreshing certificate for {} failed (attempt {}), still serving serial {} until "
              "it expires; retry in {}: {}",
              e.id.ToString(), e.failures, e.cert->serial_hex, SecondsText(delay),
              error.ToString());
  } else {
    AMBIT_LOG(kWarn, "identity", "no certificate for {} (attempt {}), retry in {}: {}",
              e.id.ToString(), e.failures, SecondsText(delay), error.ToString());
  }
  FailWaiters(e, error, /*all=*/false);
}

base::Duration SecretManager::NextBackoff(int failures) {
  base::Duration base = options_.initial_backoff;
  for (int i = 1; i < failures && base < options_.max_backoff; ++i) base *= 2;
  base = std::min(base, options_.max_backoff);
  std::uniform_real_distribution<double> dist(1.0 - options_.jitter, 1.0 + options_.jitter);
  const auto jittered = duration_cast<base::Duration>(Seconds(
      duration_cast<Seconds>(base).count() * dist(rng_)));
  return std::min(jittered, options_.max_backoff);
}

void SecretManager::ScheduleAt(Entry& e, base::WallTime when, bool retry) {
  ScheduleAfter(e, std::max(base::Duration(0), when - loop_.clock().WallNow()), retry);
}

void SecretManager::ScheduleAfter(Entry& e, base::Duration delay, bool /*retry*/) {
  const base::MonoTime when = loop_.Now() + delay;
  e.next_fetch = when;
  std::weak_ptr<SecretManager*> weak = alive_;
  e.timer.ArmAt(when, [weak, id = e.id] {
    if (std::shared_ptr<SecretManager*> self = weak.lock()) (*self)->OnTimer(id);
  });
}

void SecretManager::OnTimer(const Identity& id) {
  Entry* e = Find(id);
  if (e == nullptr) return;
  e->next_fetch.reset();
  const CertPriority p = Usable(*e) ? CertPriority::kBackground : e->priority;
  e->priority = CertPriority::kBackground;  // Enqueue raises it to `p`
  Enqueue(*e, p);
}

// ---- waiters ----------------------------------------------------------------------

void SecretManager::AddWaiter(Entry& e, GetCallback done, const GetOptions& options) {
  Waiter w;
  w.id = e.next_waiter++;
  w.done = std::move(done);
  w.until_next_attempt = options.max_wait <= base::Duration(0);
  if (!w.until_next_attempt) {
    w.timer = std::make_unique<LoopTimer>(loop_);
    std::weak_ptr<SecretManager*> weak = alive_;
    w.timer->ArmAt(loop_.Now() + options.max_wait, [weak, id = e.id, wid = w.id] {
      if (std::shared_ptr<SecretManager*> self = weak.lock()) {
        (*self)->OnWaiterTimeout(id, wid);
      }
    });
  }
  e.waiters.push_back(std::move(w));
}

void SecretManager::OnWaiterTimeout(const Identity& id, uint64_t waiter_id) {
  Entry* e = Find(id);
  if (e == nullptr) return;
  auto it = std::find_if(e->waiters.begin(), e->waiters.end(),
                         [waiter_id](const Waiter& w) { return w.id == waiter_id; });
  if (it == e->waiters.end()) return;
  Waiter w = std::move(*it);
  e->waiters.erase(it);
  const std::string why = e->last_error.ok()
                              ? std::string("the first fetch has not finished")
                              : Cat("last error: ", std::string(e->last_error.message()));
  w.done(absl::UnavailableError(Cat("no certificate for ", id.ToString(), " from ",
                                    source_.name(), " yet (", why, ")")));
}

void SecretManager::FailWaiters(Entry& e, const Status& error, bool all) {
  std::vector<Waiter> fail;
  for (auto it = e.waiters.begin(); it != e.waiters.end();) {
    if (all || it->until_next_attempt) {
      fail.push_back(std::move(*it));
      it = e.waiters.erase(it);
    } else {
      ++it;
    }
  }
  for (Waiter& w : fail) w.done(error);  // `e` is not used after this
}

// ---- dump -------------------------------------------------------------------------

CertStatusDump SecretManager::MakeDump(const Entry& e) const {
  CertStatusDump d{.identity = e.id,
                   .state = Usable(e)             ? CertState::kAvailable
                            : !e.last_error.ok() ? CertState::kUnavailable
                                                 : CertState::kInitializing,
                   .priority = e.priority};
  d.cert = e.cert;
  if (e.cert) {
    if (auto chain = SplitPemCerts(e.cert->CertChainPem(), "chain"); chain.ok()) {
      d.chain_pems = *std::move(chain);
    }
    if (auto roots = SplitPemCerts(e.cert->root_pem, "roots"); roots.ok()) {
      d.root_pems = *std::move(roots);
    }
    d.serial_hex = e.cert->serial_hex;
    d.valid_from = e.cert->not_before;
    d.expiration_time = e.cert->not_after;
  }
  if (!e.last_error.ok()) d.last_error = std::string(e.last_error.message());
  d.consecutive_failures = e.failures;
  d.next_fetch = e.next_fetch;
  return d;
}

std::vector<CertStatusDump> SecretManager::Dump() const {
  std::vector<CertStatusDump> out;
  for (const auto& [id, e] : entries_) out.push_back(MakeDump(*e));
  std::sort(out.begin(), out.end(), [](const CertStatusDump& a, const CertStatusDump& b) {
    return a.identity.ToString() < b.identity.ToString();
  });
  return out;
}

std::optional<CertStatusDump> SecretManager::DumpOne(const Identity& id) const {
  Entry* e = Find(id);
  if (e == nullptr) return std::nullopt;
  return MakeDump(*e);
}

}  // namespace ambit::identity
