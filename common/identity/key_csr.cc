#include "common/identity/key_csr.h"

#include <openssl/pem.h>

#include "common/identity/cert_builder.h"
#include "common/identity/x509_util.h"

namespace ambit::identity {
namespace {

Status AddSanRequest(X509_REQ* req, const Identity& id) {
  ASSIGN_OR_RETURN(X509_EXTENSION * san, MakeUriSanExtension({id.ToString()}, true));
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  if (exts == nullptr) {
    X509_EXTENSION_free(san);
    return OpensslError("allocating CSR extensions");
  }
  sk_X509_EXTENSION_push(exts, san);
  const int ok = X509_REQ_add_extensions(req, exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  return ok == 1 ? absl::OkStatus() : OpensslError("adding CSR extension request");
}

}  // namespace

StatusOr<KeyAndCsr> GenerateKeyAndCsr(const Identity& id) {
  ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateP256Key());
  X509ReqPtr req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
    return OpensslError("building CSR");
  }
  RETURN_IF_ERROR(AddSanRequest(req.get(), id));
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) return OpensslError("signing CSR");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) {
    return OpensslError("encoding CSR");
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  KeyAndCsr out;
  out.csr_pem.assign(data, static_cast<size_t>(n));
  ASSIGN_OR_RETURN(out.private_key_pem, PrivateKeyToPem(key.get()));
  return out;
}

}  // namespace ambit::identity
