#include "common/identity/ossl_ptr.h"

#include <openssl/err.h>

#include "common/identity/cat.h"

namespace ambit::identity {

std::string DrainOpensslErrors() {
  std::string out;
  unsigned long e;  // NOLINT(runtime/int): OpenSSL's type
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

Status OpensslError(std::string_view what) {
  std::string detail = DrainOpensslErrors();
  if (detail.empty()) return absl::InternalError(std::string(what));
  return absl::InternalError(Cat(what, ": ", detail));
}

}  // namespace ambit::identity
