// The built-in CA: a self-signed ECDSA P-256 root kept in a directory
// (ca.crt, ca.key 0600) that signs workload certificates. For standalone and
// test use; production takes certificates from istiod (ISTIO-COMPAT §6).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/identity/cert_bundle.h"
#include "common/identity/identity.h"
#include "common/identity/ossl_ptr.h"

namespace ambit::identity {

inline constexpr std::chrono::seconds kDefaultCertTtl = std::chrono::hours(24);

class BuiltinCa {
 public:
  // A new root in memory (10-year validity).
  static StatusOr<BuiltinCa> Generate(const base::Clock& clock = base::RealClock::Instance());
  // Generate() and write ca.crt + ca.key (0600) into `dir` (created if
  // missing). Refuses to overwrite an existing CA.
  static StatusOr<BuiltinCa> CreateInDir(const std::filesystem::path& dir,
                                         const base::Clock& clock = base::RealClock::Instance());
  static StatusOr<BuiltinCa> LoadFromDir(const std::filesystem::path& dir,
                                         const base::Clock& clock = base::RealClock::Instance());
  // The CA in `dir` (ca.crt present), or a new one created there; *created
  // says which (the agents and the waypoint share one directory).
  static StatusOr<BuiltinCa> LoadOrCreateInDir(const std::filesystem::path& dir, bool* created,
                                               const base::Clock& clock = base::RealClock::Instance());

  // Signs a PKCS#10 CSR carrying exactly one SPIFFE URI SAN and a P-256 key.
  // Returns the leaf PEM.
  StatusOr<std::string> SignCsr(std::string_view csr_pem,
                                std::chrono::seconds ttl = kDefaultCertTtl) const;
  // Generates key + CSR for `id` and signs it: a complete workload bundle.
  StatusOr<CertBundle> Issue(const Identity& id, std::chrono::seconds ttl = kDefaultCertTtl) const;

  const std::string& root_pem() const { return root_pem_; }
  X509* root_cert() const { return cert_.get(); }
  EVP_PKEY* root_key() const { return key_.get(); }

 private:
  BuiltinCa(X509Ptr cert, EvpPkeyPtr key, std::string root_pem, const base::Clock& clock);

  X509Ptr cert_;
  EvpPkeyPtr key_;
  std::string root_pem_;
  const base::Clock* clock_;
};

}  // namespace ambit::identity
