#include "common/telemetry/peer_labels.h"

namespace ambit::telemetry {

namespace {
std::string_view TypeName(mesh::WorkloadType t) {
  switch (t) {
    case mesh::WorkloadType::kDeployment: return "deployment";
    case mesh::WorkloadType::kCronJob: return "cronjob";
    case mesh::WorkloadType::kPod: return "pod";
    case mesh::WorkloadType::kJob: return "job";
  }
  return "pod";
}
}  // namespace

hbone::Baggage BaggageFor(const mesh::Workload& w) {
  hbone::Baggage b;
  b.cluster_id = w.cluster_id;
  b.namespace_name = w.ns;
  b.workload_type = std::string(TypeName(w.workload_type));
  b.workload_name = w.workload_name.empty() ? w.name : w.workload_name;
  b.service_name = w.canonical_name;
  b.service_version = w.canonical_revision;
  b.region = w.locality.region;
  b.zone = w.locality.zone;
  return b;
}

PeerLabels LabelsFor(const mesh::Workload* w) {
  PeerLabels l;
  if (w == nullptr) return l;
  l.workload = w->workload_name.empty() ? w->name : w->workload_name;
  l.canonical_service = w->canonical_name.empty() ? l.workload : w->canonical_name;
  l.canonical_revision = w->canonical_revision.empty() ? "latest" : w->canonical_revision;
  l.namespace_ = w->ns;
  l.app = l.canonical_service;
  l.version = l.canonical_revision;
  l.cluster = w->cluster_id;
  l.region = w->locality.region;
  l.zone = w->locality.zone;
  return l;
}

PeerLabels LabelsFromBaggage(const hbone::Baggage& b) {
  PeerLabels l;
  l.workload = b.workload_name;
  l.canonical_service = b.service_name;
  l.canonical_revision = b.service_version;
  l.namespace_ = b.namespace_name;
  l.app = b.workload_name;
  l.version = b.service_version;
  l.cluster = b.cluster_id;
  l.region = b.region;
  l.zone = b.zone;
  return l;
}

void SetServiceLabels(const mesh::Service* s, ConnectionLabels* labels) {
  if (s == nullptr) return;
  labels->destination_service = s->hostname;
  labels->destination_service_namespace = s->ns;
  labels->destination_service_name = s->name;
}

}  // namespace ambit::telemetry
