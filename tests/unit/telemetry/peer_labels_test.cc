// common/telemetry/peer_labels: baggage <-> labels as ztunnel maps them.
#include <doctest/doctest.h>

#include "common/hbone/headers.h"
#include "common/telemetry/peer_labels.h"

namespace ambit::telemetry {
namespace {

TEST_CASE("source labels from request baggage (ztunnel with_derived_source)") {
  const hbone::Baggage b = hbone::ParseBaggage(
      "k8s.cluster.name=east,k8s.namespace.name=shop,k8s.deployment.name=cart-v2,"
      "service.name=cart,service.version=v2,cloud.region=eu-west1,"
      "cloud.availability_zone=eu-west1-b");
  const PeerLabels l = LabelsFromBaggage(b);
  CHECK(l.workload == "cart-v2");
  CHECK(l.canonical_service == "cart");
  CHECK(l.canonical_revision == "v2");
  CHECK(l.namespace_ == "shop");
  CHECK(l.app == "cart-v2");  // ztunnel: source_app = the workload name
  CHECK(l.version == "v2");
  CHECK(l.cluster == "east");
  CHECK(l.region == "eu-west1");
  CHECK(l.zone == "eu-west1-b");
  CHECK(l.principal.empty());  // only ever from the verified certificate

  // Round trip of our own baggage.
  mesh::Workload w;
  w.ns = "demo";
  w.name = "pod-1";
  w.workload_name = "web";
  w.canonical_name = "web-app";
  w.canonical_revision = "v1";
  w.cluster_id = "Kubernetes";
  const PeerLabels r = LabelsFromBaggage(hbone::ParseBaggage(hbone::FormatBaggage(BaggageFor(w))));
  CHECK(r.workload == "web");
  CHECK(r.canonical_service == "web-app");
  CHECK(r.namespace_ == "demo");
  CHECK(r.cluster == "Kubernetes");
}

}  // namespace
}  // namespace ambit::telemetry
