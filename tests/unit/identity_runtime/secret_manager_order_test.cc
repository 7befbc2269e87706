// SecretManager with a hand-driven CertSource: priority order, expiry while
// the source fails, destruction with work outstanding.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "common/identity/secret_manager.h"
#include "common/io/test_loop.h"

namespace ambit::identity {
namespace {

using namespace std::chrono_literals;

Identity Id(std::string_view sa) { return *Identity::Make("cluster.local", "default", sa); }

// Records fetches; the test completes them one by one (results are posted,
// as the real sources do). Issues with a BuiltinCa on the simulated clock.
class ManualSource final : public CertSource {
 public:
  ManualSource(io::Loop& loop, std::chrono::seconds ttl)
      : loop_(loop), ca_(*BuiltinCa::Generate(loop.clock())), ttl_(ttl) {}
  void Fetch(const Identity& id, CertCallback done) override {
    started.push_back(id.service_account());
    pending_.push_back({id, std::move(done)});
  }
  std::string_view name() const override { return "manual"; }

  size_t pending() const { return pending_.size(); }
  void Succeed(size_t i = 0) { Complete(i, std::nullopt); }
  void Fail(size_t i, Status s) { Complete(i, std::move(s)); }

  std::vector<std::string> started;

 private:
  struct Pending {
    Identity id;
    CertCallback done;
  };
  void Complete(size_t i, std::optional<Status> error) {
    REQUIRE(i < pending_.size());
    Pending p = std::move(pending_[i]);
    pending_.erase(pending_.begin() + static_cast<long>(i));
    StatusOr<CertBundle> r = error ? StatusOr<CertBundle>(*error) : ca_.Issue(p.id, ttl_);
    loop_.Post([done = std::move(p.done), r = std::move(r)]() mutable { done(std::move(r)); });
  }

  io::Loop& loop_;
  BuiltinCa ca_;
  std::chrono::seconds ttl_;
  std::vector<Pending> pending_;
};

struct Env {
  io::TestLoop t{io::BackendKind::kEpoll};
  ManualSource src{t.loop(), 600s};
  std::unique_ptr<SecretManager> sm;
  explicit Env(size_t max_concurrent = 8) {
    sm = std::make_unique<SecretManager>(
        t.loop(), src, SecretManagerOptions{.max_concurrent = max_concurrent, .seed = 3});
  }
};

TEST_CASE("secret manager: queued fetches run RealTime, then Warmup, then Background") {
  Env env(/*max_concurrent=*/1);
  env.sm->Prefetch(Id("first"), CertPriority::kBackground);  // takes the only slot
  env.sm->Prefetch(Id("bg1"), CertPriority::kBackground);
  env.sm->Prefetch(Id("warm1"), CertPriority::kWarmup);
  env.sm->Prefetch(Id("bg2"), CertPriority::kBackground);
  std::optional<StatusOr<CertPtr>> rt;
  env.sm->Get(Id("rt"), [&](StatusOr<CertPtr> r) { rt.emplace(std::move(r)); });
  env.sm->Prefetch(Id("warm2"), CertPriority::kWarmup);
  env.sm->Prefetch(Id("bg2"), CertPriority::kRealTime);  // raised while queued
  CHECK(env.sm->queued() == 5);
  CHECK(env.sm->DumpOne(Id("bg2"))->priority == CertPriority::kRealTime);
  for (int i = 0; i < 6; ++i) {
    REQUIRE(env.src.pending() == 1);
    env.src.Succeed();
    env.t.RunUntilIdle();
  }
  // Same priority: earlier enqueued first (bg2 keeps its place in time when raised).
  CHECK(env.src.started ==
        std::vector<std::string>{"first", "bg2", "rt", "warm1", "warm2", "bg1"});
  REQUIRE(rt.has_value());
  CHECK(rt->ok());
}

TEST_CASE("secret manager: an expired cert is not served while the source fails") {
  Env env;
  const Identity id = Id("a");
  env.sm->Prefetch(id);
  env.src.Succeed();
  env.t.RunUntilIdle();
  CertPtr cert = env.sm->Lookup(id);
  REQUIRE(cert != nullptr);
  // From half-life on every attempt fails; keep failing until after expiry.
  int failures = 0;
  while (env.t.clock().WallNow() < cert->not_after) {
    auto d = env.sm->DumpOne(id);
    REQUIRE(d->next_fetch.has_value());
    CHECK(d->state == CertState::kAvailable);
    CHECK(env.sm->Lookup(id) == cert);
    env.t.Advance(*d->next_fetch - env.t.loop().Now());
    REQUIRE(env.src.pending() == 1);
    env.src.Fail(0, absl::UnavailableError("CA down"));
    env.t.RunUntilIdle();
    ++failures;
  }
  CHECK(failures >= 3);
  CHECK(env.sm->Lookup(id) == nullptr);
  auto d = env.sm->DumpOne(id);
  CHECK(d->state == CertState::kUnavailable);
  CHECK(d->last_error == "CA down");
  CHECK(d->cert == cert);  // still shown in the dump

  // A caller now waits for the next attempt, which succeeds.
  std::optional<StatusOr<CertPtr>> out;
  env.sm->Get(id, [&](StatusOr<CertPtr> r) { out.emplace(std::move(r)); },
              GetOptions{.max_wait = 1h});
  CHECK(!out.has_value());
  env.t.Advance(*env.sm->DumpOne(id)->next_fetch - env.t.loop().Now());
  REQUIRE(env.src.pending() == 1);
  env.src.Succeed();
  env.t.RunUntilIdle();
  REQUIRE(out.has_value());
  REQUIRE(out->ok());
  CHECK((**out)->serial_hex != cert->serial_hex);
}

TEST_CASE("secret manager: the concurrency limit counts fetches of forgotten identities") {
  Env env(/*max_concurrent=*/1);
  env.sm->Prefetch(Id("a"));
  env.sm->Prefetch(Id("b"));
  env.sm->Forget(Id("a"));
  CHECK(env.sm->in_flight() == 1);
  CHECK(env.src.pending() == 1);  // b waits until a's call returns
  env.src.Succeed();
  env.t.RunUntilIdle();
  CHECK(env.sm->Lookup(Id("a")) == nullptr);
  CHECK(env.src.started == std::vector<std::string>{"a", "b"});
  env.src.Succeed();
  env.t.RunUntilIdle();
  CHECK(env.sm->Lookup(Id("b")) != nullptr);
}

TEST_CASE("secret manager: destruction cancels waiters and drops late results") {
  Env env;
  std::optional<StatusOr<CertPtr>> out;
  env.sm->Get(Id("a"), [&](StatusOr<CertPtr> r) { out.emplace(std::move(r)); });
  env.sm.reset();
  env.src.Succeed();  // the source answers after the manager is gone
  env.t.RunUntilIdle();
  REQUIRE(out.has_value());
  CHECK(out->status().code() == absl::StatusCode::kCancelled);
}

TEST_CASE("secret manager: Task form of Get") {
  Env env;
  std::optional<StatusOr<CertPtr>> out;
  auto run = [](SecretManager& sm, std::optional<StatusOr<CertPtr>>* o) -> io::Task<void> {
    o->emplace(co_await sm.Get(Id("a")));
    // Cached now: the second await completes without suspending.
    StatusOr<CertPtr> again = co_await sm.Get(Id("a"));
    CHECK(again.ok());
  };
  env.t.loop().Spawn(run(*env.sm, &out));
  env.t.RunUntilIdle();
  CHECK(!out.has_value());
  env.src.Succeed();
  env.t.RunUntilIdle();
  REQUIRE(out.has_value());
  CHECK(out->ok());
  CHECK(env.src.started.size() == 1);
}

}  // namespace
}  // namespace ambit::identity
