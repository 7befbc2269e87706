#include "common/tls/crl.h"

#include <openssl/bio.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/identity/cat.h"
#include "common/identity/ossl_ptr.h"
#include "common/identity/x509_util.h"

namespace ambit::tls {
namespace {

using identity::Cat;

std::string NameText(const X509_NAME* name) {
  identity::BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

CrlSet::~CrlSet() {
  for (X509_CRL* c : crls_) X509_CRL_free(c);
}

StatusOr<std::shared_ptr<const CrlSet>> CrlSet::Parse(std::string_view data) {
  std::shared_ptr<CrlSet> set(new CrlSet());
  if (data.empty()) return std::shared_ptr<const CrlSet>(set);
  identity::BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return identity::OpensslError("CRL buffer");
  if (data.starts_with("-----BEGIN")) {
    for (;;) {
      X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
      if (crl == nullptr) break;
      set->crls_.push_back(crl);
    }
    // PEM_read_* ends with "no start line" at the end of the input; any other
    // error is a block that did not parse.
    (void)identity::DrainOpensslErrors();
    const size_t blocks = [&] {
      size_t n = 0;
      for (size_t pos = data.find("-----BEGIN X509 CRL-----"); pos != std::string_view::npos;
           pos = data.find("-----BEGIN X509 CRL-----", pos + 1)) {
        ++n;
      }
      return n;
    }();
    if (blocks != set->crls_.size()) {
      return absl::InvalidArgumentError(
          Cat("CRL ", set->crls_.size() + 1, " of ", blocks, " does not parse"));
    }
  } else {
    X509_CRL* crl = d2i_X509_CRL_bio(bio.get(), nullptr);
    if (crl == nullptr) return identity::OpensslError("DER CRL does not parse");
    set->crls_.push_back(crl);
  }
  return std::shared_ptr<const CrlSet>(set);
}

std::optional<std::string> CrlSet::FindRevoked(STACK_OF(X509) * chain) const {
  if (chain == nullptr || crls_.empty()) return std::nullopt;
  const int n = sk_X509_num(chain);
  // Every certificate with an issuer in the chain: leaf and intermediates.
  for (int i = 0; i + 1 < n; ++i) {
    X509* cert = sk_X509_value(chain, i);
    X509* issuer = sk_X509_value(chain, i + 1);
    EVP_PKEY* issuer_key = X509_get0_pubkey(issuer);
    for (X509_CRL* crl : crls_) {
      if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(cert)) != 0) continue;
      // Only a CRL the issuer signed speaks for its certificates.
      if (issuer_key == nullptr || X509_CRL_verify(crl, issuer_key) != 1) {
        (void)identity::DrainOpensslErrors();
        continue;
      }
      X509_REVOKED* revoked = nullptr;
      if (X509_CRL_get0_by_cert(crl, &revoked, cert) == 1) {
        return Cat("serial 0x", identity::SerialHex(cert), " issued by ", NameText(X509_get_issuer_name(cert)));
      }
    }
  }
  return std::nullopt;
}

Status CrlStore::Reload() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) {
      std::lock_guard<std::mutex> lock(mu_);
      set_.reset();
      return absl::NotFoundError(Cat("CRL_PATH ", path_, ": no such file (nothing revoked yet)"));
    }
    return absl::InvalidArgumentError(Cat("CRL_PATH ", path_, ": ", std::strerror(err)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  StatusOr<std::shared_ptr<const CrlSet>> set = CrlSet::Parse(buf.str());
  if (!set.ok()) {
    return absl::InvalidArgumentError(
        Cat("CRL_PATH ", path_, ": ", std::string(set.status().message()), " (keeping the previous CRLs)"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  set_ = std::move(*set);
  loads_.fetch_add(1);
  return absl::OkStatus();
}

std::shared_ptr<const CrlSet> CrlStore::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return set_;
}

void CrlStore::CountRejection(TlsRole role) {
  (role == TlsRole::kServer ? rejected_inbound_ : rejected_outbound_).fetch_add(1);
  if (on_rejection_) on_rejection_(role);
}

uint64_t CrlStore::rejections(TlsRole role) const {
  return (role == TlsRole::kServer ? rejected_inbound_ : rejected_outbound_).load();
}

}  // namespace ambit::tls
