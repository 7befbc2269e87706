// XdsStateSink: applying responses to a WorkloadStore, per-resource rejects,
// removal naming rules, one snapshot per response.
#include "common/mesh/xds_adapters/sink.h"

#include <doctest/doctest.h>

#include <string>

#include "common/xds/protocol.h"
#include "proto/authorization.pb.h"
#include "proto/workload.pb.h"

namespace ambit::xds_adapters {
namespace {

namespace pw = ::istio::workload;
namespace ps = ::istio::security;

xds::XdsResource Res(const std::string& name, const google::protobuf::Message& msg) {
  xds::XdsResource r;
  r.name = name;
  r.version = "1";
  r.resource.PackFrom(msg);
  return r;
}

xds::XdsResource WorkloadRes(const std::string& uid, const std::string& ip4,
                             pw::TunnelProtocol proto = pw::HBONE) {
  pw::Address a;
  pw::Workload* w = a.mutable_workload();
  w->set_uid(uid);
  w->set_name(uid);
  w->set_namespace_("ns1");
  w->add_addresses(ip4);
  w->set_tunnel_protocol(proto);
  (*w->mutable_services())["ns1/svc.example"].add_ports()->set_service_port(80);
  return Res(uid, a);
}

xds::XdsResource ServiceRes(const std::string& host) {
  pw::Address a;
  pw::Service* s = a.mutable_service();
  s->set_name("svc");
  s->set_namespace_("ns1");
  s->set_hostname(host);
  s->add_addresses()->set_address(std::string("\x0a\x60\x00\x01", 4));
  return Res("ns1/" + host, a);
}

struct Fixture {
  mesh::WorkloadStore store;
  std::vector<std::shared_ptr<const mesh::Snapshot>> snaps;
  XdsStateSink sink{
      store, [this](std::shared_ptr<const mesh::Snapshot> s) { snaps.push_back(std::move(s)); }};
};

const std::string kIp1("\x0a\x00\x00\x01", 4);
const std::string kIp2("\x0a\x00\x00\x02", 4);

TEST_CASE("sink: invalid resources are rejected by name, the rest of the push applies") {
  Fixture f;
  std::vector<xds::XdsResource> added;
  added.push_back(WorkloadRes("good", kIp1));
  added.push_back(WorkloadRes("legacy", kIp2, pw::LEGACY_ISTIO_MTLS));
  added.push_back(WorkloadRes("five", std::string(5, '\1')));
  added.push_back(ServiceRes("svc.example"));
  std::vector<xds::ResourceError> errors =
      f.sink.OnResources(xds::kAddressType, std::move(added), {});
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].name == "legacy");
  CHECK(errors[1].name == "five");
  CHECK(xds::NackMessage(errors) ==
        "legacy: tunnel_protocol: LEGACY_ISTIO_MTLS is not supported (use HBONE or NONE); "
        "five: addresses[0]: address has 5 bytes; want 4 (IPv4) or 16 (IPv6)");
  REQUIRE(f.snaps.size() == 1);  // one snapshot for the whole response
  const mesh::Snapshot& s = *f.snaps[0];
  CHECK(s.FindWorkload("good") != nullptr);
  CHECK(s.FindWorkload("legacy") == nullptr);
  CHECK(s.FindWorkload("five") == nullptr);
  const mesh::Service* svc = s.FindServiceByKey("ns1/svc.example");
  REQUIRE(svc != nullptr);
  CHECK(svc->endpoints.count("good") == 1);
  CHECK(f.sink.counters().applied == 2);
  CHECK(f.sink.counters().rejected == 2);
}

TEST_CASE("sink: a rejected update keeps the previous version") {
  Fixture f;
  std::vector<xds::XdsResource> first{WorkloadRes("w", kIp1)};
  CHECK(f.sink.OnResources(xds::kAddressType, std::move(first), {}).empty());
  std::vector<xds::XdsResource> bad{WorkloadRes("w", kIp2, pw::LEGACY_ISTIO_MTLS)};
  CHECK(f.sink.OnResources(xds::kAddressType, std::move(bad), {}).size() == 1);
  REQUIRE(f.snaps.size() == 2);
  const mesh::Workload* w = f.snaps[1]->FindWorkload("w");
  REQUIRE(w != nullptr);
  CHECK(w->addresses[0].ToString() == "10.0.0.1");
}

TEST_CASE("sink: removal by workload uid and by ns/host service name") {
  Fixture f;
  std::vector<xds::XdsResource> added{WorkloadRes("Kubernetes//Pod/ns1/a", kIp1),
                                      ServiceRes("svc.example")};
  f.sink.OnResources(xds::kAddressType, std::move(added), {});
  REQUIRE(f.snaps.back()->workloads().size() == 1);
  REQUIRE(f.snaps.back()->services().size() == 1);

  f.sink.OnResources(xds::kAddressType, {}, {"Kubernetes//Pod/ns1/a"});
  CHECK(f.snaps.back()->workloads().empty());
  CHECK(f.snaps.back()->services().size() == 1);

  f.sink.OnResources(xds::kAddressType, {}, {"ns1/svc.example", "unknown-name"});
  CHECK(f.snaps.back()->services().empty());
  CHECK(f.sink.counters().removed == 2);
}

TEST_CASE("sink: removal rule for names never received on this sink") {
  Fixture f;
  mesh::Service s;
  s.name = "svc";
  s.ns = "ns2";
  s.hostname = "other.example";
  REQUIRE(f.store.UpsertService(s).ok());
  mesh::Workload w;
  w.uid = "uid-x";
  w.ns = "ns2";
  REQUIRE(f.store.UpsertWorkload(w).ok());
  f.sink.OnResources(xds::kAddressType, {}, {"ns2/other.example", "uid-x"});
  CHECK(f.snaps.back()->services().empty());
  CHECK(f.snaps.back()->workloads().empty());
}

TEST_CASE("sink: authorization push, wrong Any type, removal") {
  Fixture f;
  ps::Authorization a;
  a.set_name("allow");
  a.set_namespace_("ns1");
  a.add_rules()->add_clauses()->add_matches()->add_destination_ports(80);
  std::vector<xds::XdsResource> added{Res("ns1/allow", a), WorkloadRes("w", kIp1)};
  std::vector<xds::ResourceError> errors =
      f.sink.OnResources(xds::kAuthorizationType, std::move(added), {});
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].name == "w");
  CHECK(errors[0].reason ==
        "resource is a type.googleapis.com/istio.workload.Address, expected "
        "type.googleapis.com/istio.security.Authorization");
  const mesh::Policy* p = f.snaps.back()->FindPolicy("ns1/allow");
  REQUIRE(p != nullptr);
  CHECK(p->rules[0].clauses[0].matches[0].destination_ports == std::vector<uint16_t>{80});
  f.sink.OnResources(xds::kAuthorizationType, {}, {"ns1/allow"});
  CHECK(f.snaps.back()->FindPolicy("ns1/allow") == nullptr);
}

TEST_CASE("sink: a name that changes its resource drops the old one") {
  Fixture f;
  std::vector<xds::XdsResource> first{WorkloadRes("uid-1", kIp1)};
  first[0].name = "name-a";
  f.sink.OnResources(xds::kAddressType, std::move(first), {});
  std::vector<xds::XdsResource> second{WorkloadRes("uid-2", kIp2)};
  second[0].name = "name-a";
  f.sink.OnResources(xds::kAddressType, std::move(second), {});
  CHECK(f.snaps.back()->FindWorkload("uid-1") == nullptr);
  CHECK(f.snaps.back()->FindWorkload("uid-2") != nullptr);
  f.sink.OnResources(xds::kAddressType, {}, {"name-a"});
  CHECK(f.snaps.back()->workloads().empty());
}

TEST_CASE("sink: readiness callback once") {
  Fixture f;
  int calls = 0;
  f.sink.set_on_ready([&] { ++calls; });
  CHECK_FALSE(f.sink.ready());
  f.sink.OnReady();
  f.sink.OnReady();
  CHECK(f.sink.ready());
  CHECK(calls == 1);
}

}  // namespace
}  // namespace ambit::xds_adapters

namespace ambit::xds_adapters {
namespace {

TEST_CASE("sink: undecodable bytes are rejected, never crash") {
  Fixture f;
  xds::XdsResource garbage;
  garbage.name = "junk";
  garbage.resource.set_type_url(std::string(xds::kAddressType));
  garbage.resource.set_value(std::string("\xff\xff\xff\xff\x0f\x01", 6));
  xds::XdsResource empty_addr = Res("empty", pw::Address());
  std::vector<xds::XdsResource> added{garbage, empty_addr};
  std::vector<xds::ResourceError> errors =
      f.sink.OnResources(xds::kAddressType, std::move(added), {});
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].name == "junk");
  CHECK(errors[0].reason == "cannot decode type.googleapis.com/istio.workload.Address");
  CHECK(errors[1].reason == "Address: has neither workload nor service");
  REQUIRE(f.snaps.size() == 1);
  CHECK(f.snaps[0]->workloads().empty());
}

}  // namespace
}  // namespace ambit::xds_adapters
