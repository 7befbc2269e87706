// DeltaXdsClient + XdsStateSink against the in-process FakeXdsServer.
#include "common/xds/client.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include "common/mesh/xds_adapters/sink.h"
#include "tests/support/fake_xds.h"

namespace ambit::xds {
namespace {

using namespace std::chrono_literals;
using testing::FakeXdsServer;
namespace pw = ::istio::workload;
namespace ps = ::istio::security;

const std::string kAddr(kAddressType);
const std::string kAuthz(kAuthorizationType);

pw::Workload MakeWorkload(const std::string& uid, uint8_t last) {
  pw::Workload w;
  w.set_uid(uid);
  w.set_name(uid);
  w.set_namespace_("ns1");
  w.add_addresses(std::string{10, 0, 0, static_cast<char>(last)});
  w.set_tunnel_protocol(pw::HBONE);
  return w;
}

pw::Service MakeService(const std::string& host) {
  pw::Service s;
  s.set_name("svc");
  s.set_namespace_("ns1");
  s.set_hostname(host);
  pw::NetworkAddress* vip = s.add_addresses();
  vip->set_address(std::string{10, 96, 0, 1});
  return s;
}

struct Harness {
  std::unique_ptr<io::Loop> loop = *io::Loop::Create({.backend = io::BackendKind::kEpoll});
  std::unique_ptr<FakeXdsServer> server = *FakeXdsServer::Start();
  mesh::WorkloadStore store;
  std::shared_ptr<const mesh::Snapshot> snap;
  int snapshots = 0;
  xds_adapters::XdsStateSink sink{store, [this](std::shared_ptr<const mesh::Snapshot> s) {
                                    snap = std::move(s);
                                    ++snapshots;
                                  }};
  std::unique_ptr<DeltaXdsClient> client;

  void StartClient(std::string token = "literal-jwt") {
    XdsClientOptions o;
    o.node = NodeInfoFromEnv({{"INSTANCE_IP", "10.1.1.1"},
                              {"POD_NAME", "zt"},
                              {"POD_NAMESPACE", "istio-system"},
                              {"NODE_NAME", "n1"},
                              {"ISTIO_META_CLUSTER_ID", "c1"}});
    GrpcTransportOptions g;
    g.address = server->address();
    g.insecure_for_test = true;
    g.auth_token = std::move(token);
    g.cluster_id = "c1";
    g.extra_headers = {{"X-Extra", "yes"}};
    auto c = DeltaXdsClient::CreateGrpc(*loop, std::move(o), std::move(g), sink);
    REQUIRE_MESSAGE(c.ok(), std::string(c.status().message()));
    client = std::move(*c);
    client->Start();
  }
  bool Until(const std::function<bool()>& pred) { return loop->RunUntil(pred, 10s); }
  bool Acked(const std::string& nonce) {
    return Until([&] { return server->FindAck(nonce).has_value(); });
  }
  ~Harness() {
    client.reset();  // before the sink and the loop
  }
};

// A token file that the test can rewrite; removed at the end.
struct TokenFile {
  std::string path;
  TokenFile() {
    char tmpl[] = "/tmp/ambit-xds-jwt-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    close(fd);
    path = tmpl;
  }
  void Write(const std::string& token) { std::ofstream(path, std::ios::trunc) << token << "\n"; }
  ~TokenFile() { unlink(path.c_str()); }
};

TEST_CASE("client: subscription, headers, node, readiness") {
  Harness h;
  h.server->SetWorkload(MakeWorkload("Kubernetes//Pod/ns1/a", 1));
  h.StartClient();
  REQUIRE(h.Until([&] { return h.client->ready() && h.sink.ready(); }));
  auto addr = h.server->FindInitial(1, kAddr);
  auto authz = h.server->FindInitial(1, kAuthz);
  REQUIRE(addr.has_value());
  REQUIRE(authz.has_value());
  CHECK(addr->node_id == "ztunnel~10.1.1.1~zt.istio-system~istio-system.svc.cluster.local");
  CHECK(addr->node_metadata.at("CLUSTER_ID") == "c1");
  CHECK(addr->node_metadata.at("NODE_NAME") == "n1");
  CHECK(addr->initial_resource_versions.empty());
  auto headers = h.server->stream_headers();
  REQUIRE(headers.size() == 1);
  CHECK(headers[0].find("authorization")->second == "Bearer literal-jwt");
  CHECK(headers[0].find("clusterid")->second == "c1");
  CHECK(headers[0].find("x-extra")->second == "yes");
  REQUIRE(h.snap != nullptr);
  CHECK(h.snap->FindWorkload("Kubernetes//Pod/ns1/a") != nullptr);
}

TEST_CASE("client: push, update, removal and policy reach the snapshot; ACK carries the nonce") {
  Harness h;
  h.StartClient();
  REQUIRE(h.Until([&] { return h.client->ready(); }));

  std::string n1 = h.server->SetWorkload(MakeWorkload("Kubernetes//Pod/ns1/a", 1));
  REQUIRE(!n1.empty());
  REQUIRE(h.Acked(n1));
  CHECK_FALSE(h.server->FindAck(n1)->nack);
  REQUIRE(h.snap->FindWorkload("Kubernetes//Pod/ns1/a") != nullptr);

  std::string n2 = h.server->SetWorkload(MakeWorkload("Kubernetes//Pod/ns1/a", 9));  // update
  REQUIRE(h.Acked(n2));
  CHECK(h.snap->FindWorkload("Kubernetes//Pod/ns1/a")->addresses[0].ToString() == "10.0.0.9");

  std::string n3 = h.server->SetService(MakeService("svc.ns1.svc.cluster.local"));
  REQUIRE(h.Acked(n3));
  CHECK(h.snap->FindServiceByKey("ns1/svc.ns1.svc.cluster.local") != nullptr);

  ps::Authorization pol;
  pol.set_name("deny-all");
  pol.set_namespace_("ns1");
  pol.set_action(ps::DENY);
  std::string n4 = h.server->SetPolicy(pol);
  REQUIRE(h.Acked(n4));
  REQUIRE(h.snap->FindPolicy("ns1/deny-all") != nullptr);
  CHECK(h.snap->FindPolicy("ns1/deny-all")->action == mesh::PolicyAction::kDeny);

  std::string n5 = h.server->Remove(kAddr, "ns1/svc.ns1.svc.cluster.local");
  REQUIRE(h.Acked(n5));
  CHECK(h.snap->FindServiceByKey("ns1/svc.ns1.svc.cluster.local") == nullptr);
  std::string n6 = h.server->Remove(kAddr, "Kubernetes//Pod/ns1/a");
  REQUIRE(h.Acked(n6));
  CHECK(h.snap->workloads().empty());
  std::string n7 = h.server->Remove(kAuthz, "ns1/deny-all");
  REQUIRE(h.Acked(n7));
  CHECK(h.snap->policies().empty());
}

TEST_CASE("client: NACK names the invalid resources, valid ones of the push apply") {
  Harness h;
  h.StartClient();
  REQUIRE(h.Until([&] { return h.client->ready(); }));
  pw::Workload legacy = MakeWorkload("legacy", 2);
  legacy.set_tunnel_protocol(pw::LEGACY_ISTIO_MTLS);
  pw::Workload five = MakeWorkload("five", 3);
  five.set_addresses(0, std::string(5, '\1'));
  std::string nonce =
      h.server->Push(kAddr, {FakeXdsServer::AddressResource(MakeWorkload("good", 1), "v1"),
                             FakeXdsServer::AddressResource(legacy, "v1"),
                             FakeXdsServer::AddressResource(five, "v1")});
  REQUIRE(h.Acked(nonce));
  auto nack = h.server->FindAck(nonce);
  CHECK(nack->nack);
  CHECK(nack->error_message ==
        "legacy: tunnel_protocol: LEGACY_ISTIO_MTLS is not supported (use HBONE or NONE); "
        "five: addresses[0]: address has 5 bytes; want 4 (IPv4) or 16 (IPv6)");
  CHECK(h.snap->FindWorkload("good") != nullptr);
  CHECK(h.snap->FindWorkload("legacy") == nullptr);
  CHECK(h.snap->FindWorkload("five") == nullptr);
  auto known = h.client->KnownVersions();
  CHECK(known[kAddr].count("good") == 1);
  CHECK(known[kAddr].count("legacy") == 0);
}

TEST_CASE("client: server restart → reconnect with initial_resource_versions") {
  Harness h;
  TokenFile token;
  token.Write("jwt-one");
  h.server->SetWorkload(MakeWorkload("Kubernetes//Pod/ns1/a", 1));
  h.server->SetWorkload(MakeWorkload("Kubernetes//Pod/ns1/b", 2));
  ps::Authorization pol;
  pol.set_name("allow");
  pol.set_namespace_("ns1");
  h.server->SetPolicy(pol);
  h.StartClient(token.path);
  REQUIRE(h.Until([&] { return h.client->ready(); }));
  REQUIRE(h.Until([&] { return h.client->KnownVersions()[kAddr].size() == 2; }));
  token.Write("jwt-two");  // re-read on the next connect

  h.server->Stop();
  // While the server is away, b disappears from it (seen as a removal on reconnect).
  h.server->Remove(kAddr, "Kubernetes//Pod/ns1/b");
  REQUIRE(h.Until([&] { return h.sink.counters().stream_errors >= 1; }));
  REQUIRE(h.server->Restart().ok());
  REQUIRE(h.Until([&] { return h.server->FindInitial(2, kAuthz).has_value(); }));
  auto addr = h.server->FindInitial(2, kAddr);
  REQUIRE(addr.has_value());
  CHECK(addr->initial_resource_versions.size() == 2);
  CHECK(addr->initial_resource_versions.count("Kubernetes//Pod/ns1/a") == 1);
  CHECK(addr->initial_resource_versions.count("Kubernetes//Pod/ns1/b") == 1);
  CHECK(
      h.server->FindInitial(2, kAuthz)->initial_resource_versions.at("ns1/allow").starts_with("v"));
  // The server's reply removes b from our state.
  REQUIRE(h.Until([&] { return h.snap->FindWorkload("Kubernetes//Pod/ns1/b") == nullptr; }));
  CHECK(h.snap->FindWorkload("Kubernetes//Pod/ns1/a") != nullptr);
  CHECK(h.client->streams_opened() >= 2);
  auto headers = h.server->stream_headers();
  REQUIRE(headers.size() >= 2);
  CHECK(headers.front().find("authorization")->second == "Bearer jwt-one");
  CHECK(headers.back().find("authorization")->second == "Bearer jwt-two");
  CHECK(headers.back().find("clusterid")->second == "c1");
}

}  // namespace
}  // namespace ambit::xds
