// Small X.509 / PEM helpers shared by the CA, the bundle loader and TLS.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/identity/ossl_ptr.h"

namespace ambit::identity {

// Every certificate in a PEM text, in order. Error if none or garbage.
StatusOr<std::vector<X509Ptr>> ParseCertsPem(std::string_view pem, std::string_view what);
// Exactly the first certificate of a PEM text.
StatusOr<X509Ptr> ParseCertPem(std::string_view pem, std::string_view what);
StatusOr<EvpPkeyPtr> ParsePrivateKeyPem(std::string_view pem, std::string_view what);

StatusOr<std::string> CertToPem(X509* cert);
// PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted.
StatusOr<std::string> PrivateKeyToPem(EVP_PKEY* key);

// URI subjectAltNames of a certificate, in certificate order.
std::vector<std::string> UriSans(const X509* cert);

base::WallTime AsWallTime(const ASN1_TIME* t);
std::string SerialHex(const X509* cert);

// True if `key` is an EC key on P-256 (prime256v1).
bool IsP256(const EVP_PKEY* key);

}  // namespace ambit::identity
