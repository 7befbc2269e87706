// Standalone mode wiring: after mesh::ApplyLocalConfig has filled a store
// with the config's workloads, services and policies, translate the config's
// Istio resources against those workloads and add the resulting policies and
// workload policy keys to the same store.
#pragma once

#include "common/authz/istio_translate.h"
#include "common/mesh/snapshot.h"
#include "common/base/status.h"
#include "common/config/local_config.h"

namespace ambit::authz {

// Returns the translation (its findings are for the caller to log, count and
// show in the admin dump). Fails only if the store rejects an entry, or if a
// translated policy key collides with a `policies:` entry of the file.
StatusOr<TranslateResult> ApplyIstioResources(const config::LocalConfig& cfg,
                                              mesh::WorkloadStore* store,
                                              const TranslateOptions& options = {});

}  // namespace ambit::authz
