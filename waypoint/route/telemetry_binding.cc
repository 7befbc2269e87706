#include "waypoint/route/telemetry_binding.h"

#include <fmt/format.h>

namespace ambit::waypoint::route::internal {

namespace {
std::string Str(const YAML::Node& n) { return n.IsDefined() && n.IsScalar() ? n.Scalar() : ""; }
}  // namespace

std::string WaypointGatewayName(const mesh::Workload& self) {
  auto it = self.labels.find("gateway.networking.k8s.io/gateway-name");
  if (it != self.labels.end()) return it->second;
  if (!self.canonical_name.empty()) return self.canonical_name;
  return self.name;
}

TelemetryBinding BindTelemetry(const Doc& doc, const mesh::Snapshot& snap,
                               const mesh::Workload& self, std::string_view root_ns, Sink* sink) {
  TelemetryBinding b;
  const YAML::Node selector = Child(doc.spec, "selector");
  std::vector<YAML::Node> refs;
  if (Present(Child(doc.spec, "targetRef"))) refs.push_back(Child(doc.spec, "targetRef"));
  if (YAML::Node r = Child(doc.spec, "targetRefs"); r.IsSequence()) {
    for (const auto& x : r) refs.push_back(x);
  }
  if (refs.empty() && !Present(selector)) {
    if (doc.ns == root_ns) b.mesh = true;
    else if (doc.ns == self.ns) b.ns = true;
  } else if (!refs.empty()) {
    for (const auto& r : refs) {
      const std::string kind = Str(Child(r, "kind")), name = Str(Child(r, "name"));
      if (kind == "Gateway" && doc.ns == self.ns && name == WaypointGatewayName(self)) {
        b.workload = true;
      } else if (kind == "Service") {
        if (const mesh::Service* s = ResolveHost(snap, name, doc.ns)) b.services.push_back(s->Key());
      } else if (kind != "Gateway" && sink != nullptr) {
        sink->Add(doc, r, fmt::format("targetRefs: kind '{}' is not supported; ignored", kind));
      }
    }
  } else if (doc.ns == self.ns) {
    bool all = true;
    const YAML::Node labels = Child(selector, "matchLabels");
    if (labels.IsMap()) {
      for (const auto& kv : labels) {
        auto it = self.labels.find(Str(kv.first));
        all = all && it != self.labels.end() && it->second == Str(kv.second);
      }
    }
    b.workload = all;
  }
  return b;
}

}  // namespace ambit::waypoint::route::internal
