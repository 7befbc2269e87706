#include "common/identity/identity.h"

#include <array>

#include "common/identity/cat.h"

namespace ambit::identity {
namespace {

constexpr std::string_view kScheme = "spiffe://";

// A part must be non-empty and made of characters that can appear in a
// Kubernetes name or a trust domain; '/' never (it is the separator).
Status CheckPart(std::string_view what, std::string_view part, std::string_view uri) {
  if (part.empty()) {
    return absl::InvalidArgumentError(Cat("SPIFFE identity '", uri, "': empty ", what));
  }
  for (char c : part) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_';
    if (!ok) {
      return absl::InvalidArgumentError(
          Cat("SPIFFE identity '", uri, "': invalid character in ", what, " '", part, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Identity::Identity(std::string td, std::string ns, std::string sa)
    : trust_domain_(std::move(td)), ns_(std::move(ns)), service_account_(std::move(sa)) {
  uri_ = Cat(kScheme, trust_domain_, "/ns/", ns_, "/sa/", service_account_);
}

StatusOr<Identity> Identity::Parse(std::string_view uri) {
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return absl::InvalidArgumentError(
        Cat("SPIFFE identity '", uri,
            "': must start with spiffe:// (form "
            "spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>)"));
  }
  std::string_view rest = uri.substr(kScheme.size());
  std::array<std::string_view, 5> parts;
  size_t n = 0;
  while (true) {
    const size_t slash = rest.find('/');
    if (n == parts.size()) {
      return absl::InvalidArgumentError(
          Cat("SPIFFE identity '", uri, "': too many path segments (want <td>/ns/<ns>/sa/<sa>)"));
    }
    parts[n++] = rest.substr(0, slash);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (n != parts.size()) {
    return absl::InvalidArgumentError(
        Cat("SPIFFE identity '", uri, "': too few path segments (want <td>/ns/<ns>/sa/<sa>)"));
  }
  if (parts[1] != "ns" || parts[3] != "sa") {
    return absl::InvalidArgumentError(
        Cat("SPIFFE identity '", uri, "': path must be /ns/<namespace>/sa/<service-account>"));
  }
  return Make(parts[0], parts[2], parts[4]);
}

StatusOr<Identity> Identity::Make(std::string_view trust_domain, std::string_view ns,
                                  std::string_view service_account) {
  const std::string shown = Cat(kScheme, trust_domain, "/ns/", ns, "/sa/", service_account);
  RETURN_IF_ERROR(CheckPart("trust domain", trust_domain, shown));
  RETURN_IF_ERROR(CheckPart("namespace", ns, shown));
  RETURN_IF_ERROR(CheckPart("service account", service_account, shown));
  return Identity(std::string(trust_domain), std::string(ns), std::string(service_account));
}

}  // namespace ambit::identity
