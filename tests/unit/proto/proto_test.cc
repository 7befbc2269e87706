// Round trips of our generated protos plus wire-level checks of field numbers
// that must match Istio's (ISTIO-COMPAT §5).
#include <doctest/doctest.h>

#include <string>

#include "proto/authorization.pb.h"
#include "proto/ca.pb.h"
#include "proto/discovery.pb.h"
#include "proto/workload.pb.h"
#include "proto/zds.pb.h"

namespace {

// Tag byte for a field number < 16 with a given wire type.
char Tag(int field, int wire_type) { return static_cast<char>((field << 3) | wire_type); }

}  // namespace

TEST_CASE("workload round trip keeps every field we set") {
  istio::workload::Workload w;
  w.set_uid("Kubernetes//Pod/demo/client");
  w.set_name("client");
  w.set_namespace_("demo");
  w.add_addresses(std::string("\x0a\x2c\x01\x0a", 4));
  w.set_tunnel_protocol(istio::workload::HBONE);
  w.set_trust_domain("cluster.local");
  w.set_service_account("sleep");
  w.mutable_capacity()->set_value(3);
  auto& ports = (*w.mutable_services())["demo/httpbin.demo.svc.cluster.local"];
  auto* p = ports.add_ports();
  p->set_service_port(80);
  p->set_target_port(8080);
  w.mutable_waypoint()->mutable_hostname()->set_hostname("wp.demo.svc.cluster.local");
  w.mutable_waypoint()->set_hbone_mtls_port(15008);

  istio::workload::Address addr;
  *addr.mutable_workload() = w;
  std::string bytes;
  REQUIRE(addr.SerializeToString(&bytes));

  istio::workload::Address back;
  REQUIRE(back.ParseFromString(bytes));
  REQUIRE(back.has_workload());
  const auto& b = back.workload();
  CHECK(b.uid() == "Kubernetes//Pod/demo/client");
  CHECK(b.namespace_() == "demo");
  CHECK(b.addresses(0) == std::string("\x0a\x2c\x01\x0a", 4));
  CHECK(b.tunnel_protocol() == istio::workload::HBONE);
  CHECK(b.capacity().value() == 3);
  CHECK(b.services().at("demo/httpbin.demo.svc.cluster.local").ports(0).target_port() == 8080);
  CHECK(b.waypoint().hostname().hostname() == "wp.demo.svc.cluster.local");
  CHECK(b.waypoint().hbone_mtls_port() == 15008);
}

TEST_CASE("workload uid is field 20 on the wire") {
  istio::workload::Workload w;
  w.set_uid("u");
  std::string bytes;
  REQUIRE(w.SerializeToString(&bytes));
  // (20 << 3 | 2) = 162 → varint 0xa2 0x01, then length 1, then 'u'.
  CHECK(bytes == std::string("\xa2\x01\x01u", 4));
}

TEST_CASE("workload and service field numbers on the wire") {
  istio::workload::Workload w;
  w.set_trust_domain("td");  // 6
  std::string bytes;
  REQUIRE(w.SerializeToString(&bytes));
  CHECK(bytes == std::string({Tag(6, 2), 2, 't', 'd'}));

  istio::workload::Service s;
  s.set_visibility(istio::workload::Service::NAMESPACE);  // 14, varint
  REQUIRE(s.SerializeToString(&bytes));
  CHECK(bytes == std::string({Tag(14, 0), 1}));

  istio::workload::NetworkAddress na;
  na.set_length(0);  // proto3 optional: explicit zero is still encoded
  REQUIRE(na.SerializeToString(&bytes));
  CHECK(bytes == std::string({Tag(3, 0), 0}));
}

TEST_CASE("authorization clause matches are field 2") {
  istio::security::Clause c;
  c.add_matches()->add_destination_ports(9999);
  std::string bytes;
  REQUIRE(c.SerializeToString(&bytes));
  REQUIRE(bytes.size() >= 2);
  CHECK(bytes[0] == Tag(2, 2));
  istio::security::StringMatch m;
  m.mutable_presence();
  REQUIRE(m.SerializeToString(&bytes));
  CHECK(bytes == std::string({Tag(4, 2), 0}));
}

TEST_CASE("zds DelWorkload uid is field 2 and keep is payload 5") {
  istio::workload::zds::WorkloadRequest req;
  req.mutable_del()->set_uid("x");
  std::string bytes;
  REQUIRE(req.SerializeToString(&bytes));
  CHECK(bytes == std::string({Tag(2, 2), 3, Tag(2, 2), 1, 'x'}));
  req.mutable_keep()->set_uid("y");
  REQUIRE(req.SerializeToString(&bytes));
  CHECK(bytes == std::string({Tag(5, 2), 3, Tag(1, 2), 1, 'y'}));
}

TEST_CASE("CA request validity is field 3 and delta ADS nonce is field 6") {
  istio::v1::auth::IstioCertificateRequest ca;
  ca.set_validity_duration(86400);
  std::string bytes;
  REQUIRE(ca.SerializeToString(&bytes));
  CHECK(bytes[0] == Tag(3, 0));

  envoy::service::discovery::v3::DeltaDiscoveryRequest req;
  req.set_response_nonce("n");
  REQUIRE(req.SerializeToString(&bytes));
  CHECK(bytes == std::string({Tag(6, 2), 1, 'n'}));
  envoy::service::discovery::v3::DeltaDiscoveryResponse resp;
  resp.add_removed_resources(std::string("r"));
  REQUIRE(resp.SerializeToString(&bytes));
  CHECK(bytes == std::string({Tag(6, 2), 1, 'r'}));
}
