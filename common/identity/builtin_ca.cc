#include "common/identity/builtin_ca.h"

#include <openssl/pem.h>

#include <system_error>

#include "common/identity/cat.h"
#include "common/identity/cert_builder.h"
#include "common/identity/cert_files.h"
#include "common/identity/key_csr.h"
#include "common/identity/x509_util.h"

namespace ambit::identity {
namespace {

constexpr auto kRootValidity = std::chrono::hours(24 * 3650);
constexpr auto kBackdate = std::chrono::minutes(1);
constexpr std::string_view kCaCertFile = "ca.crt";
constexpr std::string_view kCaKeyFile = "ca.key";

StatusOr<X509ReqPtr> ParseCsr(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) {
    return absl::InvalidArgumentError(
        Cat("CSR is not a PEM PKCS#10 request: ", DrainOpensslErrors()));
  }
  return req;
}

// The URI SANs requested by a CSR.
std::vector<std::string> CsrUris(X509_REQ* req) {
  std::vector<std::string> out;
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  if (exts == nullptr) return out;
  X509Ptr tmp(X509_new());  // reuse UriSans() via a scratch certificate
  for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) == NID_subject_alt_name) {
      X509_add_ext(tmp.get(), ext, -1);
    }
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  return UriSans(tmp.get());
}

}  // namespace

BuiltinCa::BuiltinCa(X509Ptr cert, EvpPkeyPtr key, std::string root_pem, const base::Clock& clock)
    : cert_(std::move(cert)),
      key_(std::move(key)),
      root_pem_(std::move(root_pem)),
      clock_(&clock) {}

StatusOr<BuiltinCa> BuiltinCa::Generate(const base::Clock& clock) {
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateP256Key());
  CertSpec spec;
  spec.is_ca = true;
  spec.common_name = "Ambit built-in root CA";
  spec.not_before = clock.WallNow() - kBackdate;
  spec.not_after = clock.WallNow() + kRootValidity;
  ASSIGN_OR_RETURN(X509Ptr cert, BuildCert(spec, key.get(), nullptr, key.get()));
  ASSIGN_OR_RETURN(std::string pem, CertToPem(cert.get()));
  return BuiltinCa(std::move(cert), std::move(key), std::move(pem), clock);
}

StatusOr<BuiltinCa> BuiltinCa::CreateInDir(const std::filesystem::path& dir,
                                           const base::Clock& clock) {
  std::error_code ec;
  if (std::filesystem::exists(dir / kCaCertFile, ec) ||
      std::filesystem::exists(dir / kCaKeyFile, ec)) {
    return absl::AlreadyExistsError(
        Cat("a CA already exists in ", dir.string(), " (ca.crt/ca.key); refusing to overwrite it"));
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(Cat("creating CA directory ", dir.string(), ": ", ec.message()));
  }
  ASSIGN_OR_RETURN(BuiltinCa ca, Generate(clock));
  ASSIGN_OR_RETURN(std::string key_pem, PrivateKeyToPem(ca.key_.get()));
  RETURN_IF_ERROR(WriteFileAtomic(dir / kCaKeyFile, key_pem, 0600));
  RETURN_IF_ERROR(WriteFileAtomic(dir / kCaCertFile, ca.root_pem_, 0644));
  return ca;
}

StatusOr<BuiltinCa> BuiltinCa::LoadFromDir(const std::filesystem::path& dir,
                                           const base::Clock& clock) {
  StatusOr<std::string> cert_pem = ReadSmallFile(dir / kCaCertFile);
  StatusOr<std::string> key_pem = ReadSmallFile(dir / kCaKeyFile);
  if (!cert_pem.ok() || !key_pem.ok()) {
    return absl::NotFoundError(Cat("no CA in ", dir.string(),
                                   ": need ca.crt and ca.key (run `ambitctl ca init ", dir.string(),
                                   "` first)"));
  }
  ASSIGN_OR_RETURN(X509Ptr cert, ParseCertPem(*cert_pem, (dir / kCaCertFile).string()));
  ASSIGN_OR_RETURN(EvpPkeyPtr key, ParsePrivateKeyPem(*key_pem, (dir / kCaKeyFile).string()));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    DrainOpensslErrors();
    return absl::InvalidArgumentError(
        Cat("CA key ", (dir / kCaKeyFile).string(), " does not match ca.crt"));
  }
  ASSIGN_OR_RETURN(std::string pem, CertToPem(cert.get()));
  return BuiltinCa(std::move(cert), std::move(key), std::move(pem), clock);
}

StatusOr<std::string> BuiltinCa::SignCsr(std::string_view csr_pem, std::chrono::seconds ttl) const {
  if (ttl <= std::chrono::seconds(0)) {
    return absl::InvalidArgumentError("certificate TTL must be positive");
  }
  ASSIGN_OR_RETURN(X509ReqPtr req, ParseCsr(csr_pem));
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr || X509_REQ_verify(req.get(), pub) != 1) {
    DrainOpensslErrors();
    return absl::InvalidArgumentError("CSR signature does not verify");
  }
  if (!IsP256(pub)) return absl::InvalidArgumentError("CSR key is not ECDSA P-256");
  const std::vector<std::string> uris = CsrUris(req.get());
  if (uris.size() != 1) {
    return absl::InvalidArgumentError(
        Cat("CSR must request exactly one URI SAN, found ", uris.size()));
  }
  ASSIGN_OR_RETURN(Identity id, Identity::Parse(uris.front()));
  CertSpec spec;
  spec.uri_sans = {id.ToString()};
  spec.not_before = clock_->WallNow() - kBackdate;
  spec.not_after = clock_->WallNow() + ttl;
  ASSIGN_OR_RETURN(X509Ptr leaf, BuildCert(spec, pub, cert_.get(), key_.get()));
  return CertToPem(leaf.get());
}

StatusOr<CertBundle> BuiltinCa::Issue(const Identity& id, std::chrono::seconds ttl) const {
  ASSIGN_OR_RETURN(KeyAndCsr kc, GenerateKeyAndCsr(id));
  ASSIGN_OR_RETURN(std::string leaf, SignCsr(kc.csr_pem, ttl));
  return MakeCertBundle(leaf, root_pem_, kc.private_key_pem);
}

StatusOr<BuiltinCa> BuiltinCa::LoadOrCreateInDir(const std::filesystem::path& dir, bool* created,
                                                 const base::Clock& clock) {
  *created = !std::filesystem::exists(dir / "ca.crt");
  return *created ? CreateInDir(dir, clock) : LoadFromDir(dir, clock);
}

}  // namespace ambit::identity
