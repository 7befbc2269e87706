// CertSource: where workload certificates come from (ISTIO-COMPAT §6).
// Implementations: BuiltinCertSource (signs locally with a BuiltinCa) and
// IstioCaClient (gRPC CreateCertificate, ca_client.h). The SecretManager
// (secret_manager.h) caches and refreshes what a source returns.
//
// Contract: Fetch() never blocks the calling (control) thread and never calls
// `done` inline; `done` runs exactly once on the Loop the source was built
// with, in the order results arrive.
#pragma once

#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "common/base/status.h"
#include "common/identity/builtin_ca.h"
#include "common/identity/cert_bundle.h"
#include "common/identity/identity.h"
#include "common/io/loop.h"
#include "common/io/task.h"

namespace ambit::identity {

using CertCallback = absl::AnyInvocable<void(StatusOr<CertBundle>)>;

class CertSource {
 public:
  virtual ~CertSource() = default;
  // Starts fetching a fresh certificate (and key) for `id`.
  virtual void Fetch(const Identity& id, CertCallback done) = 0;
  // For logs and errors: "built-in CA", "Istio CA at istiod:15012".
  virtual std::string_view name() const = 0;
};

// Signs locally with `ca` (which must outlive the source). Results are posted
// to `loop` so callers see the same asynchronous shape as the Istio client.
class BuiltinCertSource final : public CertSource {
 public:
  BuiltinCertSource(io::Loop& loop, const BuiltinCa& ca,
                    std::chrono::seconds ttl = kDefaultCertTtl)
      : loop_(loop), ca_(ca), ttl_(ttl) {}
  void Fetch(const Identity& id, CertCallback done) override;
  std::string_view name() const override { return "built-in CA"; }

 private:
  io::Loop& loop_;
  const BuiltinCa& ca_;
  std::chrono::seconds ttl_;
};

namespace cert_source_internal {

struct FetchState {
  std::optional<StatusOr<CertBundle>> result;
  std::coroutine_handle<> waiter;
};

struct FetchAwaiter {
  CertSource& source;
  Identity id;
  std::shared_ptr<FetchState> state = std::make_shared<FetchState>();

  FetchAwaiter(CertSource& s, Identity i) : source(s), id(std::move(i)) {}
  FetchAwaiter(const FetchAwaiter&) = delete;
  FetchAwaiter& operator=(const FetchAwaiter&) = delete;
  // A frame destroyed while waiting (loop teardown) must not be resumed.
  ~FetchAwaiter() {
    if (state) state->waiter = nullptr;
  }
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    source.Fetch(id, [st = state](StatusOr<CertBundle> r) {
      st->result.emplace(std::move(r));
      if (std::coroutine_handle<> w = std::exchange(st->waiter, nullptr)) w.resume();
    });
    if (state->result.has_value()) return false;  // tolerate an inline callback
    state->waiter = h;
    return true;
  }
  StatusOr<CertBundle> await_resume() { return std::move(*state->result); }
};

}  // namespace cert_source_internal

// Task form: `StatusOr<CertBundle> b = co_await FetchCertificate(source, id);`
// Must be awaited on the source's loop thread.
inline io::Task<StatusOr<CertBundle>> FetchCertificate(CertSource& source, Identity id) {
  co_return co_await cert_source_internal::FetchAwaiter(source, std::move(id));
}

}  // namespace ambit::identity
