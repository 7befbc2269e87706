// Per-connection verification state, reachable from the SSL object (app data)
// inside OpenSSL's verify callback. Owned by the TlsEngine.
#pragma once

#include <openssl/ssl.h>

#include <vector>

#include "common/identity/identity.h"
#include "common/tls/spiffe_verify.h"

namespace ambit::tls {

struct PeerState {
  std::vector<identity::Identity> expected;  // client side only
  PeerVerdict verdict;

  static PeerState* From(SSL* ssl) { return static_cast<PeerState*>(SSL_get_app_data(ssl)); }
};

}  // namespace ambit::tls
