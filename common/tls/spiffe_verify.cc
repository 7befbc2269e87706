#include "common/tls/spiffe_verify.h"

#include <openssl/x509_vfy.h>

#include <algorithm>
#include <vector>

#include "common/identity/cat.h"
#include "common/identity/x509_util.h"

namespace ambit::tls {
using identity::Cat;
namespace {

constexpr std::string_view kSpiffeScheme = "spiffe://";

PeerVerdict Fail(TlsFailure f, std::string detail) {
  PeerVerdict v;
  v.failure = f;
  v.detail = std::move(detail);
  return v;
}

std::string JoinIdentities(std::span<const identity::Identity> ids) {
  std::string out;
  for (const identity::Identity& id : ids) {
    if (!out.empty()) out += ", ";
    out += id.ToString();
  }
  return out.empty() ? "<none>" : out;
}

bool IsSelfSigned(X509* cert) {
  if (X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) != 0) return false;
  EVP_PKEY* pub = X509_get0_pubkey(cert);
  return pub != nullptr && X509_verify(cert, pub) == 1;
}

}  // namespace

PeerVerdict CheckPeerIdentity(const X509* leaf, TlsRole role, std::string_view local_trust_domain,
                              std::span<const identity::Identity> expected) {
  const std::vector<std::string> uris = identity::UriSans(leaf);
  std::optional<identity::Identity> peer;
  bool saw_spiffe = false;
  std::string first_error;
  for (const std::string& uri : uris) {
    if (uri.substr(0, kSpiffeScheme.size()) == kSpiffeScheme) saw_spiffe = true;
    auto id = identity::Identity::Parse(uri);
    if (id.ok()) {
      peer = std::move(*id);
      break;
    }
    if (first_error.empty()) first_error = std::string(id.status().message());
  }
  if (!peer) {
    if (saw_spiffe) return Fail(TlsFailure::kMalformedSpiffeSan, first_error);
    return Fail(TlsFailure::kNoSpiffeSan,
                uris.empty() ? "peer leaf has no URI SAN"
                             : Cat("peer leaf URI SANs carry no spiffe:// identity (first: '",
                                   uris.front(), "')"));
  }
  PeerVerdict v;
  v.peer = peer;
  if (role == TlsRole::kServer) {
    if (peer->trust_domain() != local_trust_domain) {
      v.failure = TlsFailure::kTrustDomainMismatch;
      v.detail = Cat("client identity ", peer->ToString(), " is in trust domain '",
                     peer->trust_domain(), "', ours is '", local_trust_domain, "'");
    }
    return v;
  }
  const bool match = std::any_of(uris.begin(), uris.end(), [&](const std::string& uri) {
    return std::any_of(expected.begin(), expected.end(),
                       [&](const identity::Identity& e) { return e.ToString() == uri; });
  });
  if (!match) {
    v.failure = TlsFailure::kIdentityNotExpected;
    v.detail = Cat("server presented ", peer->ToString(), ", expected one of [",
                   JoinIdentities(expected), "]");
  }
  return v;
}

TlsFailure MapChainError(int x509_error, X509* leaf) {
  switch (x509_error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return TlsFailure::kExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return TlsFailure::kNotYetValid;
    case X509_V_ERR_INVALID_PURPOSE:
      return TlsFailure::kWrongEku;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return TlsFailure::kSelfSigned;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      // OpenSSL does not call a leaf without keyCertSign "self-signed"; we do.
      return leaf != nullptr && IsSelfSigned(leaf) ? TlsFailure::kSelfSigned
                                                   : TlsFailure::kUntrustedRoot;
    default:
      return TlsFailure::kBadChain;
  }
}

}  // namespace ambit::tls
