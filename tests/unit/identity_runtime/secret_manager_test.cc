// SecretManager on a simulated clock: against the fake Istio CA (real gRPC on
// loopback) and against a hand-driven source for ordering tests.
#include <doctest/doctest.h>

#include <grpcpp/grpcpp.h>

#include <optional>

#include "common/identity/ca_client.h"
#include "common/identity/secret_manager.h"
#include "common/io/test_loop.h"
#include "tests/support/fake_ca.h"

namespace ambit::identity {
namespace {

using namespace std::chrono_literals;
using testing::FakeIstioCa;

Identity Id(std::string_view sa, std::string_view ns = "default") {
  return *Identity::Make("cluster.local", ns, sa);
}

double Secs(base::Duration d) { return std::chrono::duration<double>(d).count(); }

// The fake CA and the IstioCaClient under a SecretManager on a TestLoop. The
// CA mints with the simulated wall time, set before time moves.
struct CaEnv {
  io::TestLoop t{io::BackendKind::kEpoll};
  std::unique_ptr<FakeIstioCa> ca;
  std::unique_ptr<IstioCaClient> client;
  std::unique_ptr<SecretManager> sm;
  int notified = 0;
  CertPtr last_notified;

  explicit CaEnv(std::chrono::seconds ttl = 3600s, size_t client_threads = 8) {
    auto started = FakeIstioCa::Start();
    REQUIRE(started.ok());
    ca = std::move(*started);
    ca->SetWallNow(t.clock().WallNow());
    IstioCaOptions o;
    o.address = ca->address();
    o.insecure_for_test = true;
    o.auth_token = "t";
    o.cert_ttl = ttl;
    o.max_concurrent = client_threads;
    auto c = IstioCaClient::Create(t.loop(), o);
    REQUIRE(c.ok());
    client = std::move(*c);
    sm = std::make_unique<SecretManager>(t.loop(), *client, SecretManagerOptions{.seed = 7});
    sm->Subscribe([this](const Identity&, const CertPtr& c) {
      ++notified;
      last_notified = c;
    });
  }
  void Advance(base::Duration d) {
    ca->SetWallNow(t.clock().WallNow() + d);
    t.Advance(d);
  }
  // Waits (real time, bounded) until no CA call is queued or in flight.
  bool Settle() {
    return t.RunUntil([&] { return sm->in_flight() == 0 && sm->queued() == 0; }, 10s);
  }
  CertPtr GetSync(const Identity& id, GetOptions o = {}) {
    std::optional<StatusOr<CertPtr>> out;
    sm->Get(id, [&](StatusOr<CertPtr> r) { out.emplace(std::move(r)); }, o);
    REQUIRE(t.RunUntil([&] { return out.has_value(); }, 10s));
    REQUIRE_MESSAGE(out->ok(), out->status().ToString());
    return **out;
  }
  // Certificate times have whole seconds, so half-life is computed from the cert.
  base::Duration UntilHalfLife(const CertPtr& c) {
    return c->not_before + (c->not_after - c->not_before) / 2 - t.clock().WallNow();
  }
  base::Duration UntilNextFetch(const Identity& id) {
    auto d = sm->DumpOne(id);
    REQUIRE(d.has_value());
    REQUIRE(d->next_fetch.has_value());
    return *d->next_fetch - t.loop().Now();
  }
};

TEST_CASE("secret manager: Get waits for the first certificate; dump and subscription") {
  CaEnv env;
  const Identity id = Id("reviews");
  CertPtr cert = env.GetSync(id);
  CHECK(LoadBundle(*cert)->identity == id);
  CHECK(env.notified == 1);
  CHECK(env.last_notified == cert);
  CHECK(env.sm->Lookup(id) == cert);

  auto d = env.sm->DumpOne(id);
  REQUIRE(d.has_value());
  CHECK(d->state == CertState::kAvailable);
  CHECK(CertStateName(d->state) == "Available");
  CHECK(d->chain_pems.size() == 1);
  CHECK(d->root_pems == std::vector<std::string>{env.ca->root_pem()});
  CHECK(d->serial_hex == cert->serial_hex);
  CHECK(d->valid_from == cert->not_before);
  CHECK(d->expiration_time - d->valid_from == std::chrono::seconds(3600));
  CHECK(d->valid_from <= env.t.clock().WallNow());
  CHECK(d->last_error.empty());

  // A second Get is served from the cache, inline, without a CA call.
  bool inline_done = false;
  env.sm->Get(id, [&](StatusOr<CertPtr> r) { inline_done = r.ok() && *r == cert; });
  CHECK(inline_done);
  CHECK(env.ca->calls() == 1);
}

TEST_CASE("secret manager: rotation happens at half-life") {
  CaEnv env(3600s);
  const Identity id = Id("reviews");
  CertPtr first = env.GetSync(id);
  CHECK(env.UntilNextFetch(id) == env.UntilHalfLife(first));
  CHECK(Secs(env.UntilNextFetch(id)) == doctest::Approx(1800).epsilon(0.001));

  env.Advance(env.UntilHalfLife(first) - 1s);
  REQUIRE(env.Settle());
  CHECK(env.ca->calls() == 1);
  CHECK(env.sm->Lookup(id) == first);

  env.Advance(1s);
  REQUIRE(env.t.RunUntil([&] { return env.notified == 2; }, 10s));
  CHECK(env.ca->calls() == 2);
  CertPtr second = env.sm->Lookup(id);
  REQUIRE(second != nullptr);
  CHECK(second->serial_hex != first->serial_hex);
  CHECK(env.last_notified == second);
  CHECK(env.UntilNextFetch(id) == env.UntilHalfLife(second));
  CHECK(Secs(env.UntilNextFetch(id)) == doctest::Approx(1800).epsilon(0.001));
}

TEST_CASE("secret manager: CA outage backs off 1,2,4..150 s and keeps serving the cert") {
  CaEnv env(7200s);
  const Identity id = Id("reviews");
  CertPtr first = env.GetSync(id);
  env.ca->FailAll(grpc::StatusCode::UNAVAILABLE, "istiod down");
  env.Advance(env.UntilHalfLife(first));  // the refresh starts and fails
  for (int k = 1; k <= 10; ++k) {
    REQUIRE(env.Settle());
    auto d = env.sm->DumpOne(id);
    REQUIRE(d.has_value());
    REQUIRE(d->consecutive_failures == k);
    CHECK(d->state == CertState::kAvailable);  // still serving
    CHECK(d->last_error.find("istiod down") != std::string::npos);
    CHECK(env.sm->Lookup(id) == first);
    const double base = std::min(std::pow(2.0, k - 1), 150.0);
    const double delay = Secs(env.UntilNextFetch(id));
    CHECK_MESSAGE(delay >= 0.8 * base - 1e-6, "attempt ", k, " delay ", delay);
    CHECK_MESSAGE(delay <= std::min(1.2 * base, 150.0) + 1e-6, "attempt ", k, " delay ", delay);
    // Nothing happens just before the retry is due.
    env.Advance(env.UntilNextFetch(id) - 1ms);
    REQUIRE(env.Settle());
    CHECK(env.ca->calls() == static_cast<size_t>(k + 1));
    env.Advance(1ms);
  }
  REQUIRE(env.Settle());
  CHECK(env.sm->DumpOne(id)->consecutive_failures == 11);
  CHECK(env.notified == 1);
  env.ca->Recover();
  env.Advance(env.UntilNextFetch(id));
  REQUIRE(env.t.RunUntil([&] { return env.notified == 2; }, 10s));
  auto d = env.sm->DumpOne(id);
  CHECK(d->consecutive_failures == 0);
  CHECK(d->last_error.empty());
  CertPtr second = env.sm->Lookup(id);
  CHECK(second->serial_hex != first->serial_hex);
  CHECK(env.UntilNextFetch(id) == env.UntilHalfLife(second));
}

TEST_CASE("secret manager: a waiter for a first cert gets it when the CA recovers") {
  CaEnv env;
  const Identity id = Id("reviews");
  env.ca->FailNext(2, grpc::StatusCode::UNAVAILABLE, "istiod starting");
  std::optional<StatusOr<CertPtr>> out;
  env.sm->Get(id, [&](StatusOr<CertPtr> r) { out.emplace(std::move(r)); },
              GetOptions{.max_wait = 30s});
  REQUIRE(env.Settle());
  CHECK(!out.has_value());
  auto d = env.sm->DumpOne(id);
  CHECK(d->state == CertState::kUnavailable);
  CHECK(d->last_error.find("istiod starting") != std::string::npos);
  CHECK(d->priority == CertPriority::kRealTime);
  env.Advance(env.UntilNextFetch(id));  // second attempt fails
  REQUIRE(env.Settle());
  CHECK(!out.has_value());
  env.Advance(env.UntilNextFetch(id));  // third succeeds
  REQUIRE(env.t.RunUntil([&] { return out.has_value(); }, 10s));
  REQUIRE(out->ok());
  CHECK(LoadBundle(***out)->identity == id);
  CHECK(env.ca->calls() == 3);
  CHECK(env.sm->DumpOne(id)->state == CertState::kAvailable);
}

TEST_CASE("secret manager: a waiter gets the error when the CA stays down") {
  CaEnv env;
  env.ca->FailAll(grpc::StatusCode::UNAUTHENTICATED, "token rejected");
  // max_wait = 0: the outcome of the next attempt.
  std::optional<StatusOr<CertPtr>> now;
  env.sm->Get(Id("a"), [&](StatusOr<CertPtr> r) { now.emplace(std::move(r)); },
              GetOptions{.max_wait = 0s});
  REQUIRE(env.t.RunUntil([&] { return now.has_value(); }, 10s));
  REQUIRE(!now->ok());
  CHECK(now->status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(std::string(now->status().message()).find("token rejected") != std::string::npos);

  // max_wait = 5 s: retries happen meanwhile; then the last error.
  std::optional<StatusOr<CertPtr>> later;
  env.sm->Get(Id("b"), [&](StatusOr<CertPtr> r) { later.emplace(std::move(r)); },
              GetOptions{.max_wait = 5s});
  REQUIRE(env.Settle());
  CHECK(!later.has_value());
  env.Advance(4900ms);
  REQUIRE(env.Settle());
  CHECK(!later.has_value());
  CHECK(env.ca->calls() >= 3);  // a's attempt, b's first attempt and at least one retry
  env.Advance(100ms);
  REQUIRE(later.has_value());
  REQUIRE(!later->ok());
  CHECK(later->status().code() == absl::StatusCode::kUnavailable);
  const std::string msg(later->status().message());
  CHECK(msg.find("no certificate for spiffe://cluster.local/ns/default/sa/b") !=
        std::string::npos);
  CHECK(msg.find("token rejected") != std::string::npos);
}

TEST_CASE("secret manager: at most 8 CA calls at once") {
  CaEnv env(3600s, /*client_threads=*/16);  // the manager, not the client, must limit
  env.ca->Hold();
  for (int i = 0; i < 20; ++i) env.sm->Prefetch(Id("sa" + std::to_string(i)));
  CHECK(env.sm->in_flight() == 8);
  CHECK(env.sm->queued() == 12);
  REQUIRE(env.ca->WaitForInFlight(8));
  // No ninth call arrives while the eight are held.
  CHECK(!env.t.RunUntil([&] { return env.ca->calls() > 8; }, 300ms));
  env.ca->Release();
  REQUIRE(env.t.RunUntil([&] { return env.notified == 20; }, 20s));
  CHECK(env.ca->max_in_flight() == 8);
  CHECK(env.ca->calls() == 20);
  CHECK(env.sm->fetches_started() == 20);
  for (const auto& d : env.sm->Dump()) CHECK(d.state == CertState::kAvailable);
}

TEST_CASE("secret manager: Forget stops refreshing and cancels waiters") {
  CaEnv env(3600s);
  const Identity id = Id("reviews");
  env.GetSync(id);
  env.sm->Forget(id);
  CHECK(env.sm->size() == 0);
  CHECK(env.sm->Lookup(id) == nullptr);
  env.Advance(1800s);
  env.Advance(3600s);
  REQUIRE(env.Settle());
  CHECK(env.ca->calls() == 1);
  CHECK(env.sm->fetches_started() == 1);

  // A waiter of a forgotten identity is told so.
  env.ca->Hold();
  std::optional<StatusOr<CertPtr>> out;
  env.sm->Get(Id("other"), [&](StatusOr<CertPtr> r) { out.emplace(std::move(r)); });
  env.sm->Forget(Id("other"));
  REQUIRE(env.t.RunUntil([&] { return out.has_value(); }, 5s));
  CHECK(out->status().code() == absl::StatusCode::kCancelled);
  CHECK(std::string(out->status().message()).find("forgotten") != std::string::npos);
  env.ca->Release();
  REQUIRE(env.Settle());  // the in-flight result is dropped
  CHECK(env.sm->size() == 0);
  CHECK(env.notified == 1);
}

}  // namespace
}  // namespace ambit::identity
