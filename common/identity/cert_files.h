// Certificate material on disk. Workload secrets use Istio's names:
// key.pem (0600), cert-chain.pem (leaf first, then intermediates),
// root-cert.pem.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/base/status.h"
#include "common/identity/cert_bundle.h"

namespace ambit::identity {

inline constexpr std::string_view kKeyFile = "key.pem";
inline constexpr std::string_view kCertChainFile = "cert-chain.pem";
inline constexpr std::string_view kRootCertFile = "root-cert.pem";

// Writes via a temporary file + rename; `mode` is applied before any byte is
// written, so a private key is never readable by others.
Status WriteFileAtomic(const std::filesystem::path& path, std::string_view contents, unsigned mode);
StatusOr<std::string> ReadSmallFile(const std::filesystem::path& path);

Status WriteBundleToDir(const CertBundle& bundle, const std::filesystem::path& dir);
StatusOr<CertBundle> ReadBundleFromDir(const std::filesystem::path& dir);

}  // namespace ambit::identity
