#include "common/identity/cert_source.h"

#include <utility>

namespace ambit::identity {

void BuiltinCertSource::Fetch(const Identity& id, CertCallback done) {
  StatusOr<CertBundle> bundle = ca_.Issue(id, ttl_);
  if (!bundle.ok()) {
    bundle = absl::Status(bundle.status().code(),
                          "built-in CA could not issue a certificate for " + id.ToString() +
                              ": " + std::string(bundle.status().message()));
  }
  loop_.Post([done = std::move(done), bundle = std::move(bundle)]() mutable {
    done(std::move(bundle));
  });
}

}  // namespace ambit::identity
