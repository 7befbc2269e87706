// A workload's certificate material (what Istio calls a workload secret), as
// PEM text, plus a loader that turns it into OpenSSL objects once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/identity/identity.h"
#include "common/identity/ossl_ptr.h"

namespace ambit::identity {

struct CertBundle {
  std::string leaf_pem;                 // the workload certificate
  std::vector<std::string> chain_pems;  // intermediates, leaf's issuer first; may be empty
  std::string root_pem;                 // trust bundle: one or more roots concatenated
  std::string private_key_pem;          // PKCS#8
  base::WallTime not_before;
  base::WallTime not_after;
  std::string serial_hex;

  // leaf + intermediates, as written to cert-chain.pem.
  std::string CertChainPem() const;
};

// Builds a bundle from Istio-style pieces: `cert_chain_pem` (leaf first, then
// intermediates), `root_pem`, `key_pem`. Validity and serial come from the leaf.
StatusOr<CertBundle> MakeCertBundle(std::string_view cert_chain_pem, std::string_view root_pem,
                                    std::string_view key_pem);

// The bundle parsed into OpenSSL objects; build once per identity.
struct LoadedBundle {
  X509Ptr leaf;
  std::vector<X509Ptr> chain;  // intermediates
  EvpPkeyPtr key;
  X509StorePtr roots;
  Identity identity;  // first SPIFFE URI SAN of the leaf
};

// Fails (with what to check) on bad PEM, a key that does not match the leaf,
// or a leaf without a SPIFFE identity.
StatusOr<LoadedBundle> LoadBundle(const CertBundle& bundle);

// The first URI SAN of `cert` that parses as a SPIFFE identity.
StatusOr<Identity> LeafIdentity(const X509* cert);

}  // namespace ambit::identity
