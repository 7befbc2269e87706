// SPIFFE checks on a peer leaf whose chain already verified (ISTIO-COMPAT §2.2),
// and the mapping of X.509 chain errors to TlsFailure.
#pragma once

#include <openssl/x509.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/identity/identity.h"
#include "common/tls/failure.h"

namespace ambit::tls {

enum class TlsRole { kServer, kClient };

struct PeerVerdict {
  TlsFailure failure = TlsFailure::kNone;
  std::optional<identity::Identity> peer;  // set when the leaf has a SPIFFE identity
  std::string detail;                      // human text on failure
};

// Server: the peer identity (first URI SAN that parses) must be in
// `local_trust_domain`. Client: some URI SAN must equal one of `expected`.
PeerVerdict CheckPeerIdentity(const X509* leaf, TlsRole role, std::string_view local_trust_domain,
                              std::span<const identity::Identity> expected);

// Maps an X509_V_ERR_* of a failed chain verification of `leaf`.
TlsFailure MapChainError(int x509_error, X509* leaf);

}  // namespace ambit::tls
