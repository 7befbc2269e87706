// Every branch of the outbound decision (ISTIO-COMPAT §5.7).
#include <doctest/doctest.h>

#include "common/mesh/decision.h"
#include "tests/unit/mesh/fixtures.h"

using namespace ambit::mesh;
using namespace ambit::mesh::testing;

namespace {

struct Mesh {
  WorkloadStore store;
  Workload client = Pod("demo", "client", "10.44.1.10", TunnelProtocol::kHbone, "sleep");
  Service svc = Svc("demo", "httpbin", "10.96.0.10", 80, 8080);
  Workload server = Pod("demo", "server", "10.44.2.10", TunnelProtocol::kHbone, "httpbin");
  Workload legacy = Pod("demo", "legacy", "10.44.3.10", TunnelProtocol::kNone);
  Service wp_svc = Svc("demo", "waypoint", "10.96.0.99", 15008, 15008);
  Workload wp = Pod("demo", "waypoint", "10.44.4.10", TunnelProtocol::kHbone, "waypoint");

  Mesh() {
    svc.subject_alt_names = {"spiffe://cluster.local/ns/demo/sa/extra"};
    Join(server, svc);
    Join(wp, wp_svc);
    wp_svc.subject_alt_names = {"spiffe://cluster.local/ns/demo/sa/wp-san"};
  }
  std::shared_ptr<const Snapshot> Build() {
    for (auto* w : {&client, &server, &legacy, &wp}) REQUIRE(store.UpsertWorkload(*w).ok());
    for (auto* s : {&svc, &wp_svc}) REQUIRE(store.UpsertService(*s).ok());
    return store.Build();
  }
  static GatewayAddress WaypointRef() {
    return GatewayAddress{NamespacedHostname{"demo", "waypoint.demo.svc.cluster.local"}, 15008};
  }
};

template <typename T>
T As(const Decision& d) {
  INFO(DescribeDecision(d));
  REQUIRE(std::holds_alternative<T>(d));
  return std::get<T>(d);
}

}  // namespace

TEST_CASE("service VIP → HBONE to the endpoint pod on 15008, translated authority") {
  Mesh m;
  auto snap = m.Build();
  ScriptedRng rng;
  auto d = Decide(*snap, m.client, Sock("10.96.0.10:80"), rng);
  const auto& h = As<HboneRoute>(d);
  CHECK(h.next_hop.ToString() == "10.44.2.10:15008");
  CHECK(h.authority.ToString() == "10.44.2.10:8080");
  CHECK(h.expected_identities == std::vector<std::string>{
                                     "spiffe://cluster.local/ns/demo/sa/extra",
                                     "spiffe://cluster.local/ns/demo/sa/httpbin"});
  CHECK(h.upstream->name == "server");
  CHECK(h.service->name == "httpbin");
  CHECK(!h.via_waypoint);
}

TEST_CASE("IPv6 and dual stack: each VIP family picks the endpoint address of its family") {
  WorkloadStore store;
  Workload client = Pod("demo", "client6", "fd00:1::10", TunnelProtocol::kHbone, "sleep");
  Workload server = Pod("demo", "dual", "10.44.2.20", TunnelProtocol::kHbone, "echo");
  server.addresses.push_back(Ip("fd00:2::20"));
  Workload v6only = Pod("demo", "v6only", "fd00:2::30", TunnelProtocol::kHbone, "echo");
  Service dual = Svc("demo", "echod", "10.96.0.20", 80, 8080);
  dual.vips.push_back({"", Ip("fd00::20"), 128});
  dual.ip_families = IpFamilies::kDual;
  Service six = Svc("demo", "echo6", "fd00::10", 80, 8080);
  six.ip_families = IpFamilies::kIpv6Only;
  Join(server, dual);
  Join(v6only, six);
  for (auto* w : {&client, &server, &v6only}) REQUIRE(store.UpsertWorkload(*w).ok());
  for (auto* s : {&dual, &six}) REQUIRE(store.UpsertService(*s).ok());
  auto snap = store.Build();
  ScriptedRng rng;

  const auto& a = As<HboneRoute>(Decide(*snap, client, Sock("[fd00::20]:80"), rng));
  CHECK(a.next_hop.ToString() == "[fd00:2::20]:15008");
  CHECK(a.authority.ToString() == "[fd00:2::20]:8080");
  CHECK(a.service->name == "echod");
  const auto& b = As<HboneRoute>(Decide(*snap, client, Sock("10.96.0.20:80"), rng));
  CHECK(b.next_hop.ToString() == "10.44.2.20:15008");
  CHECK(b.authority.ToString() == "10.44.2.20:8080");
  // An IPv6-only service and a v6 workload address, directly.
  const auto& c = As<HboneRoute>(Decide(*snap, client, Sock("[fd00::10]:80"), rng));
  CHECK(c.next_hop.ToString() == "[fd00:2::30]:15008");
  CHECK(c.authority.ToString() == "[fd00:2::30]:8080");
  CHECK(c.expected_identities == std::vector<std::string>{"spiffe://cluster.local/ns/demo/sa/echo"});
  const auto& d = As<HboneRoute>(Decide(*snap, client, Sock("[fd00:2::20]:9000"), rng));
  CHECK(d.next_hop.ToString() == "[fd00:2::20]:15008");
  CHECK(d.authority.ToString() == "[fd00:2::20]:9000");
  CHECK(d.upstream->name == "dual");
  // The v4 address of the same dual-stack pod stays v4.
  const auto& e = As<HboneRoute>(Decide(*snap, client, Sock("10.44.2.20:9000"), rng));
  CHECK(e.next_hop.ToString() == "10.44.2.20:15008");
}

TEST_CASE("workload IP → HBONE direct with the same port") {
  Mesh m;
  auto snap = m.Build();
  ScriptedRng rng;
  const auto& h = As<HboneRoute>(Decide(*snap, m.client, Sock("10.44.2.10:9000"), rng));
  CHECK(h.next_hop.ToString() == "10.44.2.10:15008");
  CHECK(h.authority.ToString() == "10.44.2.10:9000");
  CHECK(h.service == nullptr);
  CHECK(h.expected_identities == std::vector<std::string>{
                                     "spiffe://cluster.local/ns/demo/sa/httpbin"});
}

TEST_CASE("non-HBONE workload → plain TCP") {
  Mesh m;
  auto snap = m.Build();
  ScriptedRng rng;
  const auto& t = As<TcpRoute>(Decide(*snap, m.client, Sock("10.44.3.10:5432"), rng));
  CHECK(t.target.ToString() == "10.44.3.10:5432");
  CHECK(t.upstream->name == "legacy");
}

TEST_CASE("unknown destination → passthrough") {
  Mesh m;
  auto snap = m.Build();
  ScriptedRng rng;
  const auto& p = As<PassthroughRoute>(Decide(*snap, m.client, Sock("93.184.216.34:443"), rng));
  CHECK(p.target.ToString() == "93.184.216.34:443");
}

TEST_CASE("service without healthy endpoints → error; PASSTHROUGH service → passthrough") {
  Mesh m;
  m.server.status = WorkloadStatus::kUnhealthy;
  auto snap = m.Build();
  ScriptedRng rng;
  const auto& e = As<DecisionError>(Decide(*snap, m.client, Sock("10.96.0.10:80"), rng));
  CHECK(e.reason == "no healthy upstream for service demo/httpbin.demo.svc.cluster.local port 80");
  // Unknown service port is also "no upstream".
  m.server.status = WorkloadStatus::kHealthy;
  snap = m.Build();
  CHECK(As<DecisionError>(Decide(*snap, m.client, Sock("10.96.0.10:81"), rng)).reason ==
        "no healthy upstream for service demo/httpbin.demo.svc.cluster.local port 81");
  m.svc.load_balancing = LoadBalancing{{}, LbMode::kPassthrough, {}};
  snap = m.Build();
  CHECK(As<PassthroughRoute>(Decide(*snap, m.client, Sock("10.96.0.10:80"), rng))
            .target.ToString() == "10.96.0.10:80");
}

TEST_CASE("self-call: loopback to the agent's ports is refused, the pod's own IP is not") {
  Mesh m;
  auto snap = m.Build();
  ScriptedRng rng;
  for (const char* t : {"127.0.0.1:15001", "127.0.0.1:15006", "127.0.0.1:15008", "[::1]:15008"}) {
    const auto& e = As<DecisionError>(Decide(*snap, m.client, Sock(t), rng));
    CHECK(e.reason == std::string("self-call to ") + t +
                          " refused: ports 15001/15006/15008 belong to the agent");
  }
  // Loopback on another port is just passthrough.
  CHECK(std::holds_alternative<PassthroughRoute>(
      Decide(*snap, m.client, Sock("127.0.0.1:8080"), rng)));
  // ztunnel refuses loopback targets only: the pod's own IP on 15008 is a
  // workload address like any other (HBONE to itself).
  const auto& own = As<HboneRoute>(Decide(*snap, m.client, Sock("10.44.1.10:15008"), rng));
  CHECK(own.next_hop.ToString() == "10.44.1.10:15008");
  CHECK(own.authority.ToString() == "10.44.1.10:15008");
}

TEST_CASE("service waypoint: HBONE to the waypoint pod, authority untranslated") {
  Mesh m;
  m.svc.waypoint = Mesh::WaypointRef();
  auto snap = m.Build();
  ScriptedRng rng;
  const auto& h = As<HboneRoute>(Decide(*snap, m.client, Sock("10.96.0.10:80"), rng));
  CHECK(h.via_waypoint);
  CHECK(h.next_hop.ToString() == "10.44.4.10:15008");
  CHECK(h.authority.ToString() == "10.96.0.10:80");
  CHECK(h.upstream->name == "waypoint");
  CHECK(h.service->name == "httpbin");
  CHECK(h.expected_identities == std::vector<std::string>{
                                     "spiffe://cluster.local/ns/demo/sa/wp-san",
                                     "spiffe://cluster.local/ns/demo/sa/waypoint"});
}

TEST_CASE("weighted waypoints: weighted choice, all-zero falls back to waypoint") {
  Mesh m;
  Workload wp2 = Pod("demo", "waypoint2", "10.44.4.20", TunnelProtocol::kHbone, "waypoint");
  REQUIRE(m.store.UpsertWorkload(wp2).ok());
  m.svc.weighted_waypoints = {{Mesh::WaypointRef(), 1},
                              {GatewayAddress{NetworkAddress{"", Ip("10.44.4.20"), 32}, 15008},
                               3}};
  auto snap = m.Build();
  ScriptedRng first({0}), second({1});
  CHECK(As<HboneRoute>(Decide(*snap, m.client, Sock("10.96.0.10:80"), first))
            .next_hop.ToString() == "10.44.4.10:15008");
  CHECK(As<HboneRoute>(Decide(*snap, m.client, Sock("10.96.0.10:80"), second))
            .next_hop.ToString() == "10.44.4.20:15008");
  m.svc.weighted_waypoints[0].weight = 0;
  m.svc.weighted_waypoints[1].weight = 0;
  m.svc.waypoint = Mesh::WaypointRef();
  snap = m.Build();
  CHECK(As<HboneRoute>(Decide(*snap, m.client, Sock("10.96.0.10:80"), second))
            .next_hop.ToString() == "10.44.4.10:15008");
}

TEST_CASE("workload waypoint, and loop prevention when the source is that waypoint") {
  Mesh m;
  m.server.waypoint = Mesh::WaypointRef();
  auto snap = m.Build();
  ScriptedRng rng;
  const auto& h = As<HboneRoute>(Decide(*snap, m.client, Sock("10.44.2.10:8080"), rng));
  CHECK(h.via_waypoint);
  CHECK(h.next_hop.ToString() == "10.44.4.10:15008");
  CHECK(h.authority.ToString() == "10.44.2.10:8080");

  // Service-addressed traffic does not use the workload's waypoint.
  CHECK(!As<HboneRoute>(Decide(*snap, m.client, Sock("10.96.0.10:80"), rng)).via_waypoint);

  // The waypoint itself sending to the workload goes direct: no loop.
  const auto& direct = As<HboneRoute>(Decide(*snap, m.wp, Sock("10.44.2.10:8080"), rng));
  CHECK(!direct.via_waypoint);
  CHECK(direct.next_hop.ToString() == "10.44.2.10:15008");
  CHECK(direct.authority.ToString() == "10.44.2.10:8080");
}

TEST_CASE("missing waypoint and cross-network upstreams are errors") {
  Mesh m;
  m.svc.waypoint = GatewayAddress{NamespacedHostname{"demo", "gone.example"}, 15008};
  auto snap = m.Build();
  ScriptedRng rng;
  CHECK(As<DecisionError>(Decide(*snap, m.client, Sock("10.96.0.10:80"), rng)).reason ==
        "waypoint demo/gone.example not found (destination 10.96.0.10:80)");

  Mesh x;
  x.server.network = "net2";
  auto snap2 = x.Build();
  CHECK(As<DecisionError>(Decide(*snap2, x.client, Sock("10.96.0.10:80"), rng)).reason ==
        "upstream c1//Pod/demo/server is on network 'net2': cross-network not supported yet");
}

TEST_CASE("service-addressed traffic takes the service's waypoint even from that waypoint") {
  // ztunnel build_request: fetch_service_waypoint has no from-waypoint check;
  // a waypoint reaches its backends by workload address (next case).
  Mesh m;
  m.svc.waypoint = Mesh::WaypointRef();
  m.server.waypoint = Mesh::WaypointRef();
  auto snap = m.Build();
  ScriptedRng rng;
  const auto& again = As<HboneRoute>(Decide(*snap, m.wp, Sock("10.96.0.10:80"), rng));
  CHECK(again.via_waypoint);
  CHECK(again.next_hop.ToString() == "10.44.4.10:15008");
  CHECK(again.authority.ToString() == "10.96.0.10:80");
  CHECK(again.service->name == "httpbin");
  CHECK(As<HboneRoute>(Decide(*snap, m.client, Sock("10.96.0.10:80"), rng)).via_waypoint);
  // Workload-addressed from the waypoint: direct (check_from_waypoint).
  const auto& direct = As<HboneRoute>(Decide(*snap, m.wp, Sock("10.44.2.10:8080"), rng));
  CHECK(!direct.via_waypoint);
  CHECK(direct.next_hop.ToString() == "10.44.2.10:15008");
}

TEST_CASE("from-waypoint needs the waypoint's identity and address (ztunnel check_from_waypoint)") {
  // Same identity, another address: not the waypoint.
  Mesh a;
  a.server.waypoint = Mesh::WaypointRef();
  Workload twin = Pod("demo", "twin", "10.44.4.11", TunnelProtocol::kHbone, "waypoint");
  REQUIRE(a.store.UpsertWorkload(twin).ok());
  auto snap = a.Build();
  ScriptedRng rng;
  CHECK(As<HboneRoute>(Decide(*snap, twin, Sock("10.44.2.10:8080"), rng)).via_waypoint);

  // The waypoint's address under another identity (address form of the
  // reference): not the waypoint either.
  Mesh b;
  b.server.waypoint = GatewayAddress{NetworkAddress{"", Ip("10.44.4.10"), 32}, 15008};
  auto snap_b = b.Build();
  Workload imposter = Pod("demo", "imposter", "10.44.4.10", TunnelProtocol::kHbone, "sleep");
  CHECK(As<HboneRoute>(Decide(*snap_b, imposter, Sock("10.44.2.10:8080"), rng)).via_waypoint);
  CHECK(!As<HboneRoute>(Decide(*snap_b, b.wp, Sock("10.44.2.10:8080"), rng)).via_waypoint);
}

TEST_CASE("hostname-only endpoint → ResolveRoute, completed to TCP or HBONE on the resolved IP") {
  Mesh m;
  Service ext = Svc("demo", "ext", "240.240.0.1", 80, 8080);
  Workload dns = Pod("demo", "ext-dns", "10.0.0.1", TunnelProtocol::kNone);
  dns.addresses.clear();
  dns.hostname = "ext.example.test";
  Join(dns, ext);
  REQUIRE(m.store.UpsertWorkload(dns).ok());
  REQUIRE(m.store.UpsertService(ext).ok());
  auto snap = m.Build();
  ScriptedRng rng;
  const auto& r = As<ResolveRoute>(Decide(*snap, m.client, Sock("240.240.0.1:80"), rng));
  CHECK(r.upstream->hostname == "ext.example.test");
  CHECK(r.port == 8080);
  CHECK(r.service->name == "ext");
  CHECK(r.original.ToString() == "240.240.0.1:80");
  auto ip = ambit::net::IpAddress::Parse("192.0.2.7");
  REQUIRE(ip.ok());
  const auto& t = As<TcpRoute>(CompleteResolved(r, *ip));
  CHECK(t.target.ToString() == "192.0.2.7:8080");
  CHECK(t.upstream->uid == dns.uid);

  // The same workload over HBONE: ip:15008, authority ip:target port.
  ResolveRoute hb = r;
  Workload mesh_dns = *r.upstream;
  mesh_dns.protocol = TunnelProtocol::kHbone;
  hb.upstream = &mesh_dns;
  const auto& h = As<HboneRoute>(CompleteResolved(hb, *ip));
  CHECK(h.next_hop.ToString() == "192.0.2.7:15008");
  CHECK(h.authority.ToString() == "192.0.2.7:8080");
}

TEST_CASE("a workload with neither IPs nor hostname is no candidate") {
  Mesh m;
  Service ext = Svc("demo", "ext", "240.240.0.1", 80, 8080);
  Workload none = Pod("demo", "none", "10.0.0.1", TunnelProtocol::kNone);
  none.addresses.clear();
  Join(none, ext);
  REQUIRE(m.store.UpsertWorkload(none).ok());
  REQUIRE(m.store.UpsertService(ext).ok());
  auto snap = m.Build();
  ScriptedRng rng;
  CHECK(As<DecisionError>(Decide(*snap, m.client, Sock("240.240.0.1:80"), rng)).reason ==
        "no healthy upstream for service demo/ext.demo.svc.cluster.local port 80");
}
