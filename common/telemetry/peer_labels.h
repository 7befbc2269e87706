// The Istio label model: workloads as HBONE baggage and as the source /
// destination labels of Istio metrics (ISTIO-COMPAT §2.3, §8.1).
#pragma once

#include "common/telemetry/tcp_metrics.h"
#include "common/mesh/types.h"
#include "common/hbone/headers.h"

namespace ambit::telemetry {

// Labels of one side from a workload (empty fields become "unknown").
PeerLabels LabelsFor(const mesh::Workload* w);

hbone::Baggage BaggageFor(const mesh::Workload& w);

// Source labels of an inbound connection whose source workload is unknown
// (not found by IP, or through a gateway), from the CONNECT's `baggage` as
// ztunnel's with_derived_source maps it: app = the workload name, canonical
// service = service.name, revision/version = service.version.
PeerLabels LabelsFromBaggage(const hbone::Baggage& b);

// Service labels: hostname, namespace and name.
void SetServiceLabels(const mesh::Service* s, ConnectionLabels* labels);

}  // namespace ambit::telemetry
