// Builds and signs X.509 certificates (the built-in CA's engine). Exposed on
// its own so tests can mint unusual certificates (expired, wrong EKU, several
// URI SANs, self-signed leaves) with the same code.
#pragma once

#include <string>
#include <vector>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/identity/ossl_ptr.h"

namespace ambit::identity {

struct CertSpec {
  bool is_ca = false;                 // CA:true + keyCertSign/cRLSign; else a workload leaf
  std::string common_name;            // subject CN; empty = empty subject (Istio leaves)
  std::vector<std::string> uri_sans;  // critical SAN when the subject is empty
  base::WallTime not_before;
  base::WallTime not_after;
  bool server_auth = true;  // EKU of leaves
  bool client_auth = true;
};

// Fresh ECDSA P-256 key.
StatusOr<EvpPkeyPtr> GenerateP256Key();

// Signs `subject_key`'s public half per `spec` with SHA-256 and a random
// 128-bit serial. `issuer == nullptr` means self-signed by `issuer_key`.
StatusOr<X509Ptr> BuildCert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                            EVP_PKEY* issuer_key);

// A GENERAL_NAMES extension value with one URI entry per string.
StatusOr<X509_EXTENSION*> MakeUriSanExtension(const std::vector<std::string>& uris, bool critical);

}  // namespace ambit::identity
