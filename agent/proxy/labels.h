// Shared helpers turning workloads into HBONE baggage and metric labels.
#pragma once

#include "agent/metrics/tcp_metrics.h"
#include "common/mesh/types.h"
#include "common/hbone/headers.h"

namespace ambit::agent {

hbone::Baggage BaggageFor(const mesh::Workload& w);

// Service labels: hostname, namespace and name.
void SetServiceLabels(const mesh::Service* s, ConnectionLabels* labels);

}  // namespace ambit::agent
