// Certificate revocation lists (ztunnel's CRL_PATH): a file of PEM CRLs (or
// one DER CRL) checked against every certificate of a verified peer chain, on
// inbound (client certificates) and outbound (server certificates)
// handshakes. As upstream: a certificate whose issuer has no CRL in the set
// passes (unknown status = allowed), a CRL's nextUpdate is not enforced, an
// empty file means "nothing revoked", and a file that does not parse keeps
// the previous set.
//
// Threads: CrlStore::Reload on the control thread; current() and the
// rejection counters from any thread (handshakes run on the workers).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509.h>

#include "common/base/status.h"
#include "common/tls/spiffe_verify.h"

namespace ambit::tls {

class CrlSet {
 public:
  // PEM (any number of X509 CRL blocks) or a single DER CRL. Empty: no CRLs.
  static StatusOr<std::shared_ptr<const CrlSet>> Parse(std::string_view data);
  ~CrlSet();
  CrlSet(const CrlSet&) = delete;
  CrlSet& operator=(const CrlSet&) = delete;

  size_t size() const { return crls_.size(); }
  // `chain`: leaf first, as X509_STORE_CTX_get0_chain returns it after a
  // successful verification. The revoked certificate ("serial 0x.. issued by
  // CN=..") or nullopt.
  std::optional<std::string> FindRevoked(STACK_OF(X509) * chain) const;

 private:
  CrlSet() = default;
  std::vector<X509_CRL*> crls_;
};

class CrlStore {
 public:
  explicit CrlStore(std::string path) : path_(std::move(path)) {}

  // Reads the file again. NotFound: no file yet (nothing revoked until it
  // appears, as ztunnel waits for a ConfigMap mount); InvalidArgument: it did
  // not parse (the previous set stays).
  Status Reload();
  std::shared_ptr<const CrlSet> current() const;
  const std::string& path() const { return path_; }
  uint64_t loads() const { return loads_.load(); }

  // Handshakes refused because a peer certificate is revoked, by the side
  // that refused (server: istio's reporter="destination", client: "source").
  void CountRejection(TlsRole role);
  uint64_t rejections(TlsRole role) const;
  // Also called per rejection (any thread), e.g. to move a labelled metric.
  // Set before the store is shared.
  void set_on_rejection(std::function<void(TlsRole)> fn) { on_rejection_ = std::move(fn); }

 private:
  std::string path_;
  mutable std::mutex mu_;
  std::shared_ptr<const CrlSet> set_;
  std::atomic<uint64_t> loads_{0};
  std::atomic<uint64_t> rejected_inbound_{0};
  std::atomic<uint64_t> rejected_outbound_{0};
  std::function<void(TlsRole)> on_rejection_;
};

}  // namespace ambit::tls
