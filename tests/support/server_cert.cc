#include "tests/support/server_cert.h"

#include <openssl/x509v3.h>

#include <chrono>

#include "common/identity/cert_builder.h"
#include "common/identity/x509_util.h"

namespace ambit::testing {
namespace {

std::string SanValue(const std::vector<std::string>& dns_names,
                     const std::vector<std::string>& ips) {
  std::string v;
  for (const std::string& d : dns_names) v += (v.empty() ? "DNS:" : ",DNS:") + d;
  for (const std::string& ip : ips) v += (v.empty() ? "IP:" : ",IP:") + ip;
  return v;
}

}  // namespace

StatusOr<ServerCertPem> IssueServerCert(const identity::BuiltinCa& root,
                                        const std::vector<std::string>& dns_names,
                                        const std::vector<std::string>& ips) {
  if (dns_names.empty() && ips.empty()) {
    return absl::InvalidArgumentError("server certificate needs at least one DNS or IP SAN");
  }
  ASSIGN_OR_RETURN(identity::EvpPkeyPtr key, identity::GenerateP256Key());
  identity::CertSpec spec;
  spec.common_name = dns_names.empty() ? ips.front() : dns_names.front();
  spec.not_before = base::RealClock::Instance().WallNow() - std::chrono::minutes(5);
  spec.not_after = spec.not_before + std::chrono::hours(24);
  spec.client_auth = false;
  ASSIGN_OR_RETURN(identity::X509Ptr cert,
                   identity::BuildCert(spec, key.get(), root.root_cert(), root.root_key()));
  // BuildCert only knows URI SANs: add DNS/IP ones and sign again.
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, root.root_cert(), cert.get(), nullptr, nullptr, 0);
  const std::string san = SanValue(dns_names, ips);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  if (ext == nullptr) return identity::OpensslError("building subjectAltName " + san);
  const int added = X509_add_ext(cert.get(), ext, -1);
  X509_EXTENSION_free(ext);
  if (added != 1) return identity::OpensslError("adding subjectAltName");
  if (X509_sign(cert.get(), root.root_key(), EVP_sha256()) <= 0) {
    return identity::OpensslError("re-signing the server certificate");
  }
  ServerCertPem out;
  ASSIGN_OR_RETURN(out.cert_pem, identity::CertToPem(cert.get()));
  ASSIGN_OR_RETURN(out.key_pem, identity::PrivateKeyToPem(key.get()));
  return out;
}

}  // namespace ambit::testing
