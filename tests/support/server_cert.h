// A TLS server certificate for the fake istiod (xDS and CA ports), signed by
// a BuiltinCa root, with DNS and IP subjectAltNames so that gRPC clients can
// verify it by address (IP SAN) or by an override name (DNS SAN).
#pragma once

#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/identity/builtin_ca.h"

namespace ambit::testing {

struct ServerCertPem {
  std::string cert_pem;
  std::string key_pem;
};

// `ips` are textual IPv4/IPv6 addresses; `dns_names` host names.
StatusOr<ServerCertPem> IssueServerCert(const identity::BuiltinCa& root,
                                        const std::vector<std::string>& dns_names,
                                        const std::vector<std::string>& ips);

}  // namespace ambit::testing
