// Indexes, staged endpoints, health filtering, service choice, FindAddress.
#include <doctest/doctest.h>

#include <set>

#include "common/mesh/decision.h"
#include "common/mesh/from_config.h"
#include "common/config/loader.h"
#include "tests/unit/mesh/fixtures.h"

using namespace ambit;
using namespace ambit::mesh;
using namespace ambit::mesh::testing;

TEST_CASE("workload indexes: uid, (network, IP) preference, node-local, host network") {
  WorkloadStore store("node-a");
  Workload a = Pod("ns", "a", "10.0.0.1");
  a.node = "node-a";
  a.service_account = "sa1";
  Workload other = Pod("ns", "other", "10.0.0.1", TunnelProtocol::kNone);
  other.uid = "c1/networking.istio.io/WorkloadEntry/ns/other";  // not a pod, not HBONE
  Workload hostnet = Pod("ns", "h", "10.0.0.9");
  hostnet.network_mode = NetworkMode::kHostNetwork;
  Workload remote = Pod("ns", "r", "10.0.0.1");
  remote.network = "net2";
  remote.node = "node-b";
  remote.service_account = "sa1";
  for (auto* w : {&other, &a, &hostnet, &remote}) REQUIRE(store.UpsertWorkload(*w).ok());
  auto snap = store.Build();

  CHECK(snap->FindWorkload("c1//Pod/ns/a")->name == "a");
  CHECK(snap->FindWorkload("nope") == nullptr);
  CHECK(snap->FindWorkloadByIp("", Ip("10.0.0.1"))->name == "a");  // pod + HBONE preferred
  CHECK(snap->FindWorkloadsByIp("", Ip("10.0.0.1")).size() == 2);
  CHECK(snap->FindWorkloadByIp("net2", Ip("10.0.0.1"))->name == "r");
  CHECK(snap->FindWorkloadByIp("", Ip("10.0.0.9")) == nullptr);  // host network never by IP
  auto local = snap->FindLocalWorkloads("ns", "sa1");
  REQUIRE(local.size() == 1);
  CHECK(local[0]->name == "a");

  CHECK(store.RemoveWorkload("c1//Pod/ns/a"));
  CHECK(!store.RemoveWorkload("c1//Pod/ns/a"));
  auto snap2 = store.Build();
  CHECK(snap2->generation() == snap->generation() + 1);
  CHECK(snap2->FindWorkloadByIp("", Ip("10.0.0.1"))->name == "other");
  CHECK(snap->FindWorkloadByIp("", Ip("10.0.0.1"))->name == "a");  // old snapshot unchanged
}

TEST_CASE("endpoints are staged until the service arrives; unhealthy dropped") {
  WorkloadStore store;
  Service svc = Svc("ns", "web", "10.96.0.1", 80, 8080);
  Workload a = Pod("ns", "a", "10.0.0.1");
  Workload b = Pod("ns", "b", "10.0.0.2");
  b.status = WorkloadStatus::kUnhealthy;
  Join(a, svc, {{80, 9090}});
  Join(b, svc);
  REQUIRE(store.UpsertWorkload(a).ok());
  REQUIRE(store.UpsertWorkload(b).ok());

  auto before = store.Build();
  REQUIRE(before->staged_endpoints().contains(svc.Key()));
  CHECK(before->staged_endpoints().at(svc.Key()).size() == 2);
  CHECK(before->FindServiceByKey(svc.Key()) == nullptr);

  REQUIRE(store.UpsertService(svc).ok());
  auto after = store.Build();
  CHECK(after->staged_endpoints().empty());
  const Service* s = after->FindServiceByKey(svc.Key());
  REQUIRE(s != nullptr);
  REQUIRE(s->endpoints.size() == 1);  // b is unhealthy
  CHECK(s->endpoints.at(a.uid).ports.at(80) == 9090);

  svc.load_balancing = LoadBalancing{{}, LbMode::kStandard, HealthPolicy::kAllowAll};
  REQUIRE(store.UpsertService(svc).ok());
  CHECK(store.Build()->FindServiceByKey(svc.Key())->endpoints.size() == 2);

  CHECK(store.RemoveService(svc.Key()));
  CHECK(store.Build()->staged_endpoints().at(svc.Key()).size() == 2);
}

TEST_CASE("service choice: visibility, same namespace > canonical > first seen") {
  WorkloadStore store;
  Service first = Svc("x", "first", "10.96.0.5", 80, 80);
  Service canon = Svc("y", "canon", "10.96.0.5", 80, 80);
  canon.canonical = true;
  Service mine = Svc("client", "mine", "10.96.0.5", 80, 80);
  Service hidden = Svc("z", "hidden", "10.96.0.5", 80, 80);
  hidden.visibility = Visibility::kNamespace;
  hidden.canonical = true;
  for (auto* s : {&first, &canon, &mine, &hidden}) REQUIRE(store.UpsertService(*s).ok());
  auto snap = store.Build();
  CHECK(snap->FindServiceByVip("", Ip("10.96.0.5"), "client")->name == "mine");
  CHECK(snap->FindServiceByVip("", Ip("10.96.0.5"), "other")->name == "canon");
  CHECK(snap->FindServiceByVip("", Ip("10.96.0.5"), "z")->name == "hidden");

  REQUIRE(store.RemoveService(canon.Key()));
  REQUIRE(store.RemoveService(mine.Key()));
  snap = store.Build();
  CHECK(snap->FindServiceByVip("", Ip("10.96.0.5"), "other")->name == "first");
  CHECK(snap->FindServiceByVip("net2", Ip("10.96.0.5"), "other") == nullptr);

  // Hostname lookups rank the same way.
  Service h1 = Svc("a", "h", "", 80, 80), h2 = Svc("b", "h", "", 80, 80);
  h1.hostname = h2.hostname = "shared.example";
  REQUIRE(store.UpsertService(h1).ok());
  REQUIRE(store.UpsertService(h2).ok());
  snap = store.Build();
  CHECK(snap->FindServiceByHostname("shared.example", "b")->ns == "b");
  CHECK(snap->FindServiceByHostname("shared.example", "q")->ns == "a");
}

TEST_CASE("CIDR VIPs: client namespace, longest prefix, canonical") {
  WorkloadStore store;
  Service wide = Svc("x", "wide", "", 80, 80);
  wide.vips.push_back({"", Ip("10.50.0.0"), 16});
  Service narrow = Svc("x", "narrow", "", 80, 80);
  narrow.vips.push_back({"", Ip("10.50.1.0"), 24});
  REQUIRE(store.UpsertService(wide).ok());
  REQUIRE(store.UpsertService(narrow).ok());
  auto snap = store.Build();
  CHECK(snap->FindServiceByVip("", Ip("10.50.1.7"), "q")->name == "narrow");
  CHECK(snap->FindServiceByVip("", Ip("10.50.2.7"), "q")->name == "wide");
  CHECK(snap->FindServiceByVip("", Ip("10.51.0.1"), "q") == nullptr);
}

TEST_CASE("FindAddress: workload IP wins over a service VIP") {
  WorkloadStore store;
  REQUIRE(store.UpsertService(Svc("ns", "s", "10.0.0.7", 80, 80)).ok());
  auto snap = store.Build();
  CHECK(std::holds_alternative<const Service*>(snap->FindAddress("", Ip("10.0.0.7"), "ns")));
  REQUIRE(store.UpsertWorkload(Pod("ns", "w", "10.0.0.7")).ok());
  snap = store.Build();
  auto m = snap->FindAddress("", Ip("10.0.0.7"), "ns");
  REQUIRE(std::holds_alternative<const Workload*>(m));
  CHECK(std::get<const Workload*>(m)->name == "w");
  CHECK(std::holds_alternative<std::monostate>(snap->FindAddress("", Ip("10.9.9.9"), "ns")));
}

TEST_CASE("demo.yaml converts into a snapshot") {
  auto cfg = config::LoadLocalConfigFile(AMBIT_SOURCE_ROOT "/tools/examples/demo.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  auto snap = FromLocalConfig(*cfg, "node-b");
  REQUIRE_MESSAGE(snap.ok(), snap.status().ToString());
  const Snapshot& s = **snap;
  const Workload* client = s.FindWorkloadByIp("", Ip("10.44.1.10"));
  REQUIRE(client != nullptr);
  CHECK(client->netns == "/var/run/netns/ambit-demo-client");
  CHECK(client->Identity() == "spiffe://cluster.local/ns/demo/sa/sleep");
  const Service* svc = s.FindServiceByVip("", Ip("10.96.0.10"), "demo");
  REQUIRE(svc != nullptr);
  CHECK(svc->endpoints.size() == 2);
  CHECK(s.FindLocalWorkloads("demo", "httpbin").size() == 2);
  CHECK(s.FindLocalWorkloads("demo", "sleep").empty());  // client is on node-a

  // The demo's main path: client → VIP → HBONE to one of the servers.
  ScriptedRng rng({0, 1});
  std::set<std::string> next_hops;
  for (int i = 0; i < 2; ++i) {
    Decision d = Decide(s, *client, Sock("10.96.0.10:80"), rng);
    REQUIRE_MESSAGE(std::holds_alternative<HboneRoute>(d), DescribeDecision(d));
    const HboneRoute& h = std::get<HboneRoute>(d);
    CHECK(h.authority.port() == 8080);
    CHECK(h.expected_identities ==
          std::vector<std::string>{"spiffe://cluster.local/ns/demo/sa/httpbin"});
    next_hops.insert(h.next_hop.ToString());
  }
  CHECK(next_hops == std::set<std::string>{"10.44.2.10:15008", "10.44.2.11:15008"});
}

TEST_CASE("local config conversion: default uid, duplicate uid, policies") {
  auto cfg = config::ParseLocalConfig(R"(workloads:
- {name: a, namespace: ns, clusterId: c9, workloadIps: ["10.1.1.1"]}
policies:
- name: p
  namespace: ns
  action: Deny
  rules: [[[{sourceIps: ["10.0.0.0/8"], principals: [{Suffix: /sa/x}]}]]]
)", "t.yaml");
  REQUIRE(cfg.ok());
  auto snap = FromLocalConfig(*cfg);
  REQUIRE(snap.ok());
  CHECK((*snap)->FindWorkload("c9//Pod/ns/a") != nullptr);
  const Policy* p = (*snap)->FindPolicy("ns/p");
  REQUIRE(p != nullptr);
  CHECK(p->action == PolicyAction::kDeny);
  const Match& m = p->rules.at(0).clauses.at(0).matches.at(0);
  CHECK(m.source_ips.at(0).Contains(Ip("10.2.3.4")));
  CHECK(!m.source_ips.at(0).Contains(Ip("11.2.3.4")));
  CHECK(m.principals.at(0).Matches("cluster.local/ns/y/sa/x"));

  cfg->workloads.push_back(cfg->workloads[0]);
  auto dup = FromLocalConfig(*cfg);
  REQUIRE(!dup.ok());
  CHECK(std::string(dup.status().message()) ==
        "workload ns/a (line 2): duplicate uid c9//Pod/ns/a");
}
