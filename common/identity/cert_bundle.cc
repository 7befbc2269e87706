#include "common/identity/cert_bundle.h"

#include "common/identity/cat.h"
#include "common/identity/x509_util.h"

namespace ambit::identity {

std::string CertBundle::CertChainPem() const {
  std::string out = leaf_pem;
  for (const std::string& pem : chain_pems) out += pem;
  return out;
}

StatusOr<CertBundle> MakeCertBundle(std::string_view cert_chain_pem, std::string_view root_pem,
                                    std::string_view key_pem) {
  ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, ParseCertsPem(cert_chain_pem, "cert chain"));
  RETURN_IF_ERROR(ParseCertsPem(root_pem, "root bundle").status());
  RETURN_IF_ERROR(ParsePrivateKeyPem(key_pem, "private key").status());
  CertBundle b;
  for (size_t i = 0; i < certs.size(); ++i) {
    ASSIGN_OR_RETURN(std::string pem, CertToPem(certs[i].get()));
    if (i == 0) {
      b.leaf_pem = std::move(pem);
    } else {
      b.chain_pems.push_back(std::move(pem));
    }
  }
  b.root_pem = std::string(root_pem);
  b.private_key_pem = std::string(key_pem);
  b.not_before = AsWallTime(X509_get0_notBefore(certs[0].get()));
  b.not_after = AsWallTime(X509_get0_notAfter(certs[0].get()));
  b.serial_hex = SerialHex(certs[0].get());
  return b;
}

StatusOr<Identity> LeafIdentity(const X509* cert) {
  const std::vector<std::string> uris = UriSans(cert);
  for (const std::string& uri : uris) {
    StatusOr<Identity> id = Identity::Parse(uri);
    if (id.ok()) return id;
  }
  if (uris.empty()) {
    return absl::InvalidArgumentError("certificate has no URI subjectAltName");
  }
  return absl::InvalidArgumentError(
      Cat("certificate has no SPIFFE URI subjectAltName (first URI: '", uris.front(), "')"));
}

StatusOr<LoadedBundle> LoadBundle(const CertBundle& bundle) {
  ASSIGN_OR_RETURN(X509Ptr leaf, ParseCertPem(bundle.leaf_pem, "leaf certificate"));
  ASSIGN_OR_RETURN(EvpPkeyPtr key, ParsePrivateKeyPem(bundle.private_key_pem, "private key"));
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    DrainOpensslErrors();
    return absl::InvalidArgumentError(
        "private key does not match the leaf certificate: check that key.pem and "
        "cert-chain.pem come from the same issuance");
  }
  ASSIGN_OR_RETURN(Identity id, LeafIdentity(leaf.get()));
  std::vector<X509Ptr> chain;
  for (const std::string& pem : bundle.chain_pems) {
    ASSIGN_OR_RETURN(X509Ptr c, ParseCertPem(pem, "intermediate certificate"));
    chain.push_back(std::move(c));
  }
  ASSIGN_OR_RETURN(std::vector<X509Ptr> roots, ParseCertsPem(bundle.root_pem, "root bundle"));
  X509StorePtr store(X509_STORE_new());
  if (!store) return OpensslError("allocating trust store");
  for (X509Ptr& r : roots) {
    if (X509_STORE_add_cert(store.get(), r.get()) != 1) {
      return OpensslError("adding root to trust store");
    }
  }
  return LoadedBundle{std::move(leaf), std::move(chain), std::move(key), std::move(store),
                      std::move(id)};
}

}  // namespace ambit::identity
