// SPIFFE workload identity: spiffe://<trust_domain>/ns/<namespace>/sa/<sa>.
// The only form Istio issues (ISTIO-COMPAT §2.2); anything else is rejected.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "common/base/status.h"

namespace ambit::identity {

class Identity {
 public:
  // Parses "spiffe://<td>/ns/<ns>/sa/<sa>": exactly five path segments after
  // the scheme, literal "ns" and "sa", no empty part, parts made of
  // [A-Za-z0-9._-] (DNS-ish trust domains, Kubernetes names). Errors name the
  // problem.
  static StatusOr<Identity> Parse(std::string_view uri);
  // Validates the three parts like Parse() does.
  static StatusOr<Identity> Make(std::string_view trust_domain, std::string_view ns,
                                 std::string_view service_account);

  const std::string& trust_domain() const { return trust_domain_; }
  const std::string& ns() const { return ns_; }
  const std::string& service_account() const { return service_account_; }
  // The canonical URI, as carried in certificate SANs.
  const std::string& ToString() const { return uri_; }

  friend bool operator==(const Identity& a, const Identity& b) { return a.uri_ == b.uri_; }

  template <typename H>
  friend H AbslHashValue(H h, const Identity& id) {
    return H::combine(std::move(h), id.uri_);
  }

 private:
  Identity(std::string td, std::string ns, std::string sa);

  std::string trust_domain_;
  std::string ns_;
  std::string service_account_;
  std::string uri_;
};

}  // namespace ambit::identity

template <>
struct std::hash<ambit::identity::Identity> {
  size_t operator()(const ambit::identity::Identity& id) const noexcept {
    return std::hash<std::string>{}(id.ToString());
  }
};
