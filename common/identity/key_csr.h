// Fresh workload key + PKCS#10 CSR, as sent to a CA (ISTIO-COMPAT §6.1).
#pragma once

#include <string>

#include "common/base/status.h"
#include "common/identity/identity.h"

namespace ambit::identity {

struct KeyAndCsr {
  std::string private_key_pem;  // PKCS#8, ECDSA P-256
  std::string csr_pem;          // empty subject; one extension: critical URI SAN
};

StatusOr<KeyAndCsr> GenerateKeyAndCsr(const Identity& id);

}  // namespace ambit::identity
