// Why a TLS connection was refused, one value per operator-visible cause, and
// per-reason rejection counters (exported as metrics later).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ambit::tls {

enum class TlsFailure : uint8_t {
  kNone = 0,
  kNoPeerCert,           // peer sent no certificate
  kExpired,              // a certificate in the chain is past not_after
  kNotYetValid,          // ... before not_before (clock skew?)
  kWrongEku,             // leaf lacks serverAuth/clientAuth for its role
  kUntrustedRoot,        // chain does not lead to our trust bundle
  kSelfSigned,           // leaf is self-signed
  kBadChain,             // any other chain verification error
  kNoSpiffeSan,          // no URI SAN at all / none starting with spiffe://
  kMalformedSpiffeSan,   // spiffe:// URI SANs present, none well formed
  kTrustDomainMismatch,  // server side: client identity from another trust domain
  kIdentityNotExpected,  // client side: server SANs match no expected identity
  kAlpnMismatch,         // h2 was not negotiated
  kRevoked,              // a certificate of the peer chain is on a CRL (CRL_PATH)
  kPeerAlert,            // the peer aborted the handshake (it rejected us)
  kProtocol,             // any other TLS protocol error
};
inline constexpr size_t kTlsFailureCount = static_cast<size_t>(TlsFailure::kProtocol) + 1;

// Stable snake_case name (for logs and metric labels), e.g. "trust_domain_mismatch".
std::string_view TlsFailureName(TlsFailure f);
// A sentence for operators: what went wrong and what to check.
std::string_view TlsFailureHint(TlsFailure f);

struct RejectionCounters {
  std::array<std::atomic<uint64_t>, kTlsFailureCount> by_reason{};

  void Add(TlsFailure f) {
    by_reason[static_cast<size_t>(f)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t Get(TlsFailure f) const {
    return by_reason[static_cast<size_t>(f)].load(std::memory_order_relaxed);
  }
};

}  // namespace ambit::tls
