#include "common/tls/failure.h"

namespace ambit::tls {

std::string_view TlsFailureName(TlsFailure f) {
  switch (f) {
    case TlsFailure::kNone:
      return "none";
    case TlsFailure::kNoPeerCert:
      return "no_peer_cert";
    case TlsFailure::kExpired:
      return "expired";
    case TlsFailure::kNotYetValid:
      return "not_yet_valid";
    case TlsFailure::kWrongEku:
      return "wrong_eku";
    case TlsFailure::kUntrustedRoot:
      return "untrusted_root";
    case TlsFailure::kSelfSigned:
      return "self_signed";
    case TlsFailure::kBadChain:
      return "bad_chain";
    case TlsFailure::kNoSpiffeSan:
      return "no_spiffe_san";
    case TlsFailure::kMalformedSpiffeSan:
      return "malformed_spiffe_san";
    case TlsFailure::kTrustDomainMismatch:
      return "trust_domain_mismatch";
    case TlsFailure::kIdentityNotExpected:
      return "identity_not_expected";
    case TlsFailure::kAlpnMismatch:
      return "alpn_mismatch";
    case TlsFailure::kRevoked:
      return "revoked";
    case TlsFailure::kPeerAlert:
      return "peer_alert";
    case TlsFailure::kProtocol:
      return "protocol";
  }
  return "unknown";
}

std::string_view TlsFailureHint(TlsFailure f) {
  switch (f) {
    case TlsFailure::kNone:
      return "no failure";
    case TlsFailure::kNoPeerCert:
      return "peer presented no certificate: is it an mTLS (HBONE) client?";
    case TlsFailure::kExpired:
      return "peer certificate expired: is its certificate rotation working?";
    case TlsFailure::kNotYetValid:
      return "peer certificate not yet valid: check clock skew between nodes";
    case TlsFailure::kWrongEku:
      return "peer certificate lacks the serverAuth/clientAuth extended key usage";
    case TlsFailure::kUntrustedRoot:
      return "peer certificate is not signed by our trust bundle: do both sides use the same mesh "
             "CA?";
    case TlsFailure::kSelfSigned:
      return "peer certificate is self-signed: it must be issued by the mesh CA";
    case TlsFailure::kBadChain:
      return "peer certificate chain failed verification";
    case TlsFailure::kNoSpiffeSan:
      return "peer certificate has no spiffe:// URI SAN: is it a mesh workload certificate?";
    case TlsFailure::kMalformedSpiffeSan:
      return "peer spiffe:// URI SAN is not of the form spiffe://<td>/ns/<ns>/sa/<sa>";
    case TlsFailure::kTrustDomainMismatch:
      return "peer identity is from another trust domain";
    case TlsFailure::kIdentityNotExpected:
      return "server identity is not one of the expected identities for this destination";
    case TlsFailure::kAlpnMismatch:
      return "peer did not negotiate ALPN h2";
    case TlsFailure::kRevoked:
      return "peer certificate is revoked by a CRL of CRL_PATH: the workload needs a new "
             "certificate";
    case TlsFailure::kPeerAlert:
      return "peer aborted the handshake with an alert: it rejected our certificate or parameters";
    case TlsFailure::kProtocol:
      return "TLS protocol error";
  }
  return "unknown";
}

}  // namespace ambit::tls
