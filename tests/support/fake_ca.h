// FakeIstioCa: an in-process Istio CA (istio.v1.auth.IstioCertificateService)
// on 127.0.0.1:<ephemeral> (or options.listen_address), plaintext or TLS,
// signing with a BuiltinCa root (its own, or one shared with the caller). Records
// every request and can be scripted to fail, stall, refuse impersonation or
// issue for the wrong identity. Thread-safe: gRPC handler threads and the test
// thread share it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/identity/builtin_ca.h"

namespace grpc {
class Server;
}

namespace ambit::testing {

// One CreateCertificate call as the CA saw it.
struct FakeCaRequest {
  std::string csr_pem;
  int csr_extension_count = -1;          // extensions requested in the CSR
  std::vector<std::string> csr_uri_sans;  // URI SANs requested
  bool csr_san_critical = false;
  std::string key_type;  // "EC", "RSA", ...
  std::string curve;     // "prime256v1" for P-256
  int64_t validity_duration = 0;
  std::map<std::string, std::string> metadata;  // Struct string fields
  std::string authorization;                    // header values ("" if absent)
  std::string clusterid;
  std::multimap<std::string, std::string> headers;  // all client metadata
};

struct FakeCaOptions {
  // nullopt: any ImpersonatedIdentity is accepted; else only these (Unauthenticated otherwise).
  std::optional<std::set<std::string>> allowed_impersonation;
  // "host:port"; port 0 = ephemeral.
  std::string listen_address = "127.0.0.1:0";
  // Both set: serve TLS with this certificate chain and key (PEM); else plaintext.
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // Signing root; null = a fresh one.
  std::shared_ptr<const identity::BuiltinCa> root;
};

class FakeIstioCa {
 public:
  static StatusOr<std::unique_ptr<FakeIstioCa>> Start(FakeCaOptions options = {});
  ~FakeIstioCa();

  const std::string& address() const { return address_; }  // "host:port"
  std::string root_pem() const;                             // the signing root

  // ---- scripting (thread-safe) -------------------------------------------------
  // The next `n` calls fail with `code` (a grpc::StatusCode value) and `message`.
  void FailNext(int n, int code, std::string message);
  void FailAll(int code, std::string message) { FailNext(1 << 30, code, std::move(message)); }
  void Recover() { FailNext(0, 0, ""); }
  void SetDelay(std::chrono::milliseconds delay);
  // While held, calls wait (not counted as finished) until Release().
  void Hold();
  void Release();
  // Issue certificates for this SPIFFE id instead of the requested one.
  void SetWrongIdentity(std::optional<std::string> uri);
  // Extra roots concatenated into the last cert_chain element after ours.
  void AddExtraRoot();
  // Wall time used for not_before (not_after = + validity_duration).
  void SetWallNow(base::WallTime now);

  // ---- observation -------------------------------------------------------------
  std::vector<FakeCaRequest> requests() const;
  size_t calls() const;          // requests received
  int in_flight() const;         // handlers currently running
  int max_in_flight() const;     // high-water mark
  // Wait (real time) until `pred` holds; false on timeout.
  bool WaitForCalls(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;
  bool WaitForInFlight(int n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  class Service;  // the gRPC service (fake_ca.cc)

 private:
  friend class Service;
  explicit FakeIstioCa(FakeCaOptions options);

  struct Clock final : base::Clock {
    base::MonoTime Now() const override { return base::RealClock::Instance().Now(); }
    base::WallTime WallNow() const override;
    FakeIstioCa* owner = nullptr;
  };

  FakeCaOptions options_;
  Clock clock_;
  std::shared_ptr<const identity::BuiltinCa> ca_;
  std::vector<std::string> extra_roots_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<FakeCaRequest> requests_;
  int fail_remaining_ = 0;
  int fail_code_ = 0;
  std::string fail_message_;
  std::chrono::milliseconds delay_{0};
  bool held_ = false;
  std::optional<std::string> wrong_identity_;
  std::optional<base::WallTime> wall_now_;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
};

}  // namespace ambit::testing
