#include "common/identity/x509_util.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstring>

#include "common/identity/cat.h"

namespace ambit::identity {
namespace {

BioPtr MemBio(std::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

StatusOr<std::string> BioToString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int)
  if (n <= 0 || data == nullptr) return OpensslError("PEM encoding produced no output");
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

StatusOr<std::vector<X509Ptr>> ParseCertsPem(std::string_view pem, std::string_view what) {
  BioPtr bio = MemBio(pem);
  std::vector<X509Ptr> out;
  while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    out.emplace_back(c);
  }
  // Reading stops with PEM_R_NO_START_LINE at the end: that is not an error.
  const unsigned long err = ERR_peek_last_error();  // NOLINT(runtime/int)
  if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
  }
  if (const std::string detail = DrainOpensslErrors(); !detail.empty()) {
    return absl::InvalidArgumentError(Cat(what, ": bad PEM certificate: ", detail));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(Cat(what, ": no PEM certificate found"));
  }
  return out;
}

StatusOr<X509Ptr> ParseCertPem(std::string_view pem, std::string_view what) {
  ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertsPem(pem, what));
  return std::move(certs.front());
}

StatusOr<EvpPkeyPtr> ParsePrivateKeyPem(std::string_view pem, std::string_view what) {
  BioPtr bio = MemBio(pem);
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        Cat(what, ": no usable PEM private key: ", DrainOpensslErrors()));
  }
  return key;
}

StatusOr<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return OpensslError("encoding certificate as PEM");
  }
  return BioToString(bio.get());
}

StatusOr<std::string> PrivateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY").
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpensslError("encoding private key as PKCS#8 PEM");
  }
  return BioToString(bio.get());
}

std::vector<std::string> UriSans(const X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = gn->d.uniformResourceIdentifier;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

base::WallTime AsWallTime(const ASN1_TIME* t) {
  struct tm tm;
  std::memset(&tm, 0, sizeof(tm));
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return base::WallTime{};
  return std::chrono::time_point_cast<base::Duration>(
      std::chrono::system_clock::from_time_t(timegm(&tm)));
}

std::string SerialHex(const X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (bn == nullptr) return "";
  char* hex = BN_bn2hex(bn);
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

bool IsP256(const EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) !=
      1) {
    return false;
  }
  return std::string_view(group, len) == "prime256v1";
}

}  // namespace ambit::identity
