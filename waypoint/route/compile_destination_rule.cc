// DestinationRule (networking.istio.io v1, v1beta1, v1alpha3) → the subsets
// of a service (labels an endpoint must carry) and the traffic policies of
// its clusters (compile_traffic_policy.cc).
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "waypoint/route/compile.h"
#include "waypoint/route/compile_istio_internal.h"
#include "waypoint/route/compile_traffic_policy.h"

namespace ambit::waypoint::route::internal {

void CompileDestinationRules(std::span<const config::ResourceConfig> resources,
                             const mesh::Snapshot& snap, RouteConfig* out, Sink& sink) {
  std::set<std::string> hosts_seen;
  for (const Doc& doc : LoadKind(resources, "DestinationRule", sink)) {
    const YAML::Node& spec = doc.spec;
    ReportUnknownKeys(doc, spec, "spec",
                      {"host", "subsets", "trafficPolicy", "exportTo", "workloadSelector"}, sink,
                      "unknown field; ignored");
    for (const char* later : {"exportTo", "workloadSelector"}) {
      if (Present(Child(spec, later))) {
        sink.Add(doc, Child(spec, later),
                 fmt::format("spec.{}: not supported yet; ignored", later));
      }
    }
    auto host = Scalar(doc, Child(spec, "host"), "spec.host", sink);
    if (!host) continue;
    const mesh::Service* svc = ResolveHost(snap, *host, doc.ns);
    if (svc == nullptr) {
      sink.Add(doc, Child(spec, "host"),
               fmt::format("spec.host: no service '{}' (from namespace {}); its subsets are "
                           "unknown", *host, doc.ns));
      continue;
    }
    if (!hosts_seen.insert(svc->Key()).second) {
      sink.Add(doc, Child(spec, "host"),
               fmt::format("spec.host: {} already has a DestinationRule; this one is ignored "
                           "(Istio applies one per host)", svc->hostname));
      continue;
    }
    std::vector<Subset>& subsets = out->subsets[svc->Key()];
    std::vector<std::pair<std::string, YAML::Node>> subset_policies;
    const YAML::Node list = Child(spec, "subsets");
    if (Present(list) && !list.IsSequence()) {
      sink.Add(doc, list, "spec.subsets: expected a list");
    }
    const size_t n_subsets = Present(list) && list.IsSequence() ? list.size() : 0;
    for (size_t i = 0; i < n_subsets; ++i) {
      const std::string f = Field("spec.subsets", i);
      const YAML::Node s = list[i];
      ReportUnknownKeys(doc, s, f, {"name", "labels", "trafficPolicy"}, sink,
                        "unknown field; ignored");
      auto name = Scalar(doc, Child(s, "name"), Field(f, "name"), sink);
      if (!name) continue;
      Subset sub;
      sub.name = *name;
      bool ok = true;
      if (const YAML::Node labels = Child(s, "labels"); Present(labels)) {
        if (!labels.IsMap()) {
          sink.Add(doc, labels, fmt::format("{}.labels: expected a map", f));
          ok = false;
        } else {
          for (const auto& kv : labels) {
            if (kv.first.IsScalar() && kv.second.IsScalar()) {
              sub.labels[kv.first.Scalar()] = kv.second.Scalar();
            }
          }
        }
      }
      if (!ok) continue;
      if (std::any_of(subsets.begin(), subsets.end(),
                      [&](const Subset& x) { return x.name == sub.name; })) {
        sink.Add(doc, Child(s, "name"), fmt::format("{}.name: duplicate subset '{}'; ignored", f,
                                                    sub.name));
        continue;
      }
      subset_policies.emplace_back(sub.name, Child(s, "trafficPolicy"));
      subsets.push_back(std::move(sub));
    }
    CompileTrafficPolicies(doc, *svc, subset_policies, out, sink);
  }
}

}  // namespace ambit::waypoint::route::internal
