#include "common/identity/cert_builder.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rand.h>

#include <chrono>

namespace ambit::identity {
namespace {

Status SetTime(ASN1_TIME* field, base::WallTime t) {
  const time_t secs = std::chrono::system_clock::to_time_t(
      std::chrono::time_point_cast<std::chrono::system_clock::duration>(t));
  if (ASN1_TIME_set(field, secs) == nullptr) return OpensslError("setting certificate time");
  return absl::OkStatus();
}

Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return OpensslError("random serial");
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x01;  // and a full 16 bytes long most of the time
  BIGNUM* bn = BN_bin2bn(bytes, sizeof(bytes), nullptr);
  ASN1_INTEGER* serial = bn != nullptr ? BN_to_ASN1_INTEGER(bn, nullptr) : nullptr;
  BN_free(bn);
  if (serial == nullptr) return OpensslError("encoding serial");
  const int ok = X509_set_serialNumber(cert, serial);
  ASN1_INTEGER_free(serial);
  return ok == 1 ? absl::OkStatus() : OpensslError("setting serial");
}

Status AddConfExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (ext == nullptr) return OpensslError(std::string("building extension ") + value);
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? absl::OkStatus() : OpensslError("adding extension");
}

Status SetSubject(X509* cert, const std::string& cn) {
  X509_NAME* name = X509_get_subject_name(cert);
  if (cn.empty()) return absl::OkStatus();
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("Ambit"), -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return OpensslError("setting subject name");
  }
  return absl::OkStatus();
}

Status AddExtensions(const CertSpec& spec, X509* cert, X509* issuer) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
  if (spec.is_ca) {
    RETURN_IF_ERROR(AddConfExt(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE"));
    RETURN_IF_ERROR(AddConfExt(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
    RETURN_IF_ERROR(AddConfExt(cert, &ctx, NID_subject_key_identifier, "hash"));
  } else {
    RETURN_IF_ERROR(AddConfExt(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    RETURN_IF_ERROR(AddConfExt(cert, &ctx, NID_key_usage, "critical,digitalSignature"));
    std::string eku;
    if (spec.server_auth) eku = "serverAuth";
    if (spec.client_auth) eku += eku.empty() ? "clientAuth" : ",clientAuth";
    if (eku.empty()) eku = "codeSigning";  // a leaf usable for neither TLS role
    RETURN_IF_ERROR(AddConfExt(cert, &ctx, NID_ext_key_usage, eku.c_str()));
  }
  if (issuer != nullptr) {
    RETURN_IF_ERROR(AddConfExt(cert, &ctx, NID_authority_key_identifier, "keyid"));
  }
  if (!spec.uri_sans.empty()) {
    ASSIGN_OR_RETURN(X509_EXTENSION * san,
                     MakeUriSanExtension(spec.uri_sans, spec.common_name.empty()));
    const int ok = X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    if (ok != 1) return OpensslError("adding subjectAltName");
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<EvpPkeyPtr> GenerateP256Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return OpensslError("generating ECDSA P-256 key");
  return key;
}

StatusOr<X509_EXTENSION*> MakeUriSanExtension(const std::vector<std::string>& uris, bool critical) {
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  if (names == nullptr) return OpensslError("allocating SAN list");
  for (const std::string& uri : uris) {
    GENERAL_NAME* gn = GENERAL_NAME_new();
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (gn == nullptr || s == nullptr ||
        ASN1_STRING_set(s, uri.data(), static_cast<int>(uri.size())) != 1) {
      GENERAL_NAME_free(gn);
      ASN1_IA5STRING_free(s);
      GENERAL_NAMES_free(names);
      return OpensslError("building URI SAN");
    }
    GENERAL_NAME_set0_value(gn, GEN_URI, s);
    sk_GENERAL_NAME_push(names, gn);
  }
  X509_EXTENSION* ext = X509V3_EXT_i2d(NID_subject_alt_name, critical ? 1 : 0, names);
  GENERAL_NAMES_free(names);
  if (ext == nullptr) return OpensslError("encoding subjectAltName");
  return ext;
}

StatusOr<X509Ptr> BuildCert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                            EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return OpensslError("allocating cert");
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  RETURN_IF_ERROR(SetSubject(cert.get(), spec.common_name));
  X509_NAME* issuer_name =
      issuer != nullptr ? X509_get_subject_name(issuer) : X509_get_subject_name(cert.get());
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1) return OpensslError("issuer name");
  RETURN_IF_ERROR(SetTime(X509_getm_notBefore(cert.get()), spec.not_before));
  RETURN_IF_ERROR(SetTime(X509_getm_notAfter(cert.get()), spec.not_after));
  if (X509_set_pubkey(cert.get(), subject_key) != 1) return OpensslError("setting public key");
  RETURN_IF_ERROR(AddExtensions(spec, cert.get(), issuer));
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) {
    return OpensslError("signing certificate");
  }
  return cert;
}

}  // namespace ambit::identity
