#include "common/authz/apply_local.h"

#include <fmt/format.h>

#include <vector>

namespace ambit::authz {

StatusOr<TranslateResult> ApplyIstioResources(const config::LocalConfig& cfg,
                                              mesh::WorkloadStore* store,
                                              const TranslateOptions& options) {
  const std::shared_ptr<const mesh::Snapshot> before = store->Build();
  std::vector<mesh::Workload> workloads;
  workloads.reserve(before->workloads().size());
  for (const auto& [uid, w] : before->workloads()) workloads.push_back(w);
  TranslateResult result = TranslateIstioResources(cfg.resources, workloads, options);
  for (const mesh::Policy& p : result.policies) {
    if (before->FindPolicy(p.Key()) != nullptr) {
      return absl::InvalidArgumentError(fmt::format(
          "policy {} is defined both under `policies:` and as an Istio resource; rename one",
          p.Key()));
    }
    RETURN_IF_ERROR(store->UpsertPolicy(p));
  }
  AttachWorkloadPolicies(result, workloads);
  for (mesh::Workload& w : workloads) {
    if (!result.workload_policies.contains(w.uid)) continue;
    RETURN_IF_ERROR(store->UpsertWorkload(std::move(w)));
  }
  return result;
}

}  // namespace ambit::authz
