// Inbound CONNECT authority → local target (ISTIO-COMPAT §2.4 steps 4-5).
#include <doctest/doctest.h>

#include "common/mesh/inbound.h"
#include "tests/unit/mesh/fixtures.h"

using namespace ambit::mesh;
using namespace ambit::mesh::testing;

namespace {

struct Node {
  WorkloadStore store;
  Workload server = Pod("demo", "server", "10.44.2.10");
  Workload wp = Pod("demo", "waypoint", "10.44.4.10");
  Workload other = Pod("demo", "other", "10.44.2.99");
  Service svc = Svc("demo", "httpbin", "10.96.0.10", 80, 8080);
  Service wp_svc = Svc("demo", "waypoint", "10.96.0.99", 15008, 15008);

  std::shared_ptr<const Snapshot> Build() {
    Join(wp, wp_svc);
    for (auto* w : {&server, &wp, &other}) REQUIRE(store.UpsertWorkload(*w).ok());
    for (auto* s : {&svc, &wp_svc}) REQUIRE(store.UpsertService(*s).ok());
    return store.Build();
  }
};

}  // namespace

TEST_CASE("ip:port authority equal to the arrival IP keeps the port") {
  Node n;
  auto snap = n.Build();
  auto t = MapInboundAuthority(*snap, n.server, Ip("10.44.2.10"), "10.44.2.10:8080");
  CHECK(t.status == 200);
  CHECK(t.upstream.ToString() == "10.44.2.10:8080");
  CHECK(!t.app_tunnel_proxy);
}

TEST_CASE("IP mismatch → 400 unless this workload is the target's waypoint") {
  Node n;
  n.svc.waypoint = GatewayAddress{NamespacedHostname{"demo", "waypoint.demo.svc.cluster.local"},
                                  15008};
  auto snap = n.Build();
  auto bad = MapInboundAuthority(*snap, n.server, Ip("10.44.2.10"), "10.44.2.99:8080");
  CHECK(bad.status == 400);
  CHECK(bad.reason ==
        "authority 10.44.2.99:8080 does not match the local address 10.44.2.10 and "
        "c1//Pod/demo/server is not its waypoint");
  // The waypoint pod accepts traffic for the service that uses it.
  auto ok = MapInboundAuthority(*snap, n.wp, Ip("10.44.4.10"), "10.96.0.10:80");
  CHECK(ok.status == 200);
  CHECK(ok.upstream.ToString() == "10.44.4.10:80");
  // ... but not for a workload that does not use it.
  CHECK(MapInboundAuthority(*snap, n.wp, Ip("10.44.4.10"), "10.44.2.99:80").status == 400);
}

TEST_CASE("application tunnel accepts other IPs and overrides the port") {
  Node n;
  n.wp.application_tunnel = ApplicationTunnel{AppTunnelProtocol::kProxy, 15088};
  auto snap = n.Build();
  auto t = MapInboundAuthority(*snap, n.wp, Ip("10.44.4.10"), "10.44.2.99:8080");
  CHECK(t.status == 200);
  CHECK(t.upstream.ToString() == "10.44.4.10:15088");
  CHECK(t.app_tunnel_proxy);
  CHECK(t.proxy_destination.ToString() == "10.44.2.99:8080");  // the authority, not the tunnel
}

TEST_CASE("PROXY destination of a hostname authority is the service VIP, IPv4 first") {
  auto dest = [](std::vector<NetworkAddress> vips) {
    Node n;
    n.wp.application_tunnel = ApplicationTunnel{AppTunnelProtocol::kProxy, 15088};
    n.svc.waypoint = GatewayAddress{NetworkAddress{"", Ip("10.44.4.10")}, 15008};
    n.svc.vips = std::move(vips);
    auto snap = n.Build();
    auto t =
        MapInboundAuthority(*snap, n.wp, Ip("10.44.4.10"), "httpbin.demo.svc.cluster.local:80");
    REQUIRE(t.status == 200);
    CHECK(t.app_tunnel_proxy);
    CHECK(t.upstream.ToString() == "10.44.4.10:15088");
    return t.proxy_destination.ToString();
  };
  const NetworkAddress v4{"", Ip("10.96.0.10")}, v6{"", Ip("fd00::10"), 128},
      other_net{"other-net", Ip("10.1.1.1")}, cidr{"", Ip("10.97.0.0"), 16};
  CHECK(dest({other_net, cidr, v6, v4}) == "10.96.0.10:80");
  // Only an IPv6 VIP on this network: that one; none at all: the arrival address.
  CHECK(dest({other_net, v6}) == "[fd00::10]:80");
  CHECK(dest({}) == "10.44.4.10:80");
}

TEST_CASE("an application tunnel on the agent's own port is refused, not dialled") {
  Node n;
  n.wp.application_tunnel = ApplicationTunnel{AppTunnelProtocol::kProxy, 15008};
  auto snap = n.Build();
  auto t = MapInboundAuthority(*snap, n.wp, Ip("10.44.4.10"), "10.96.0.10:80");
  CHECK(t.status == 503);
  CHECK(t.reason == "application tunnel port 15008 of c1//Pod/demo/waypoint belongs to the agent "
                    "(self-call)");
}

TEST_CASE("application tunnel NONE only moves the port") {
  Node n;
  n.wp.application_tunnel = ApplicationTunnel{AppTunnelProtocol::kNone, 9999};
  auto snap = n.Build();
  auto t = MapInboundAuthority(*snap, n.wp, Ip("10.44.4.10"), "10.44.4.10:8080");
  CHECK(t.status == 200);
  CHECK(t.upstream.ToString() == "10.44.4.10:9999");
  CHECK(!t.app_tunnel_proxy);
}

TEST_CASE("hostname authority maps through the service, endpoint map first") {
  Node n;
  n.svc.ports[81] = 0;  // named port
  Join(n.server, n.svc, {{81, 9191}});
  auto snap = n.Build();
  auto t = MapInboundAuthority(*snap, n.server, Ip("10.44.2.10"),
                               "httpbin.demo.svc.cluster.local:80");
  CHECK(t.status == 200);
  CHECK(t.upstream.ToString() == "10.44.2.10:8080");
  REQUIRE(t.service != nullptr);
  CHECK(t.service->name == "httpbin");
  t = MapInboundAuthority(*snap, n.server, Ip("10.44.2.10"), "httpbin.demo.svc.cluster.local:81");
  CHECK(t.upstream.ToString() == "10.44.2.10:9191");
  auto bad = MapInboundAuthority(*snap, n.server, Ip("10.44.2.10"),
                                 "httpbin.demo.svc.cluster.local:82");
  CHECK(bad.status == 503);
  CHECK(bad.reason == "service demo/httpbin.demo.svc.cluster.local has no target for port 82");
  bad = MapInboundAuthority(*snap, n.server, Ip("10.44.2.10"), "nope.example:80");
  CHECK(bad.status == 503);
  CHECK(bad.reason == "no service with hostname nope.example");
}

TEST_CASE("illegal target ports → 503, malformed authority → 400") {
  Node n;
  auto snap = n.Build();
  for (const char* a : {"10.44.2.10:15001", "10.44.2.10:15006", "10.44.2.10:15008"}) {
    auto t = MapInboundAuthority(*snap, n.server, Ip("10.44.2.10"), a);
    CHECK(t.status == 503);
    CHECK(t.reason.find("belongs to the agent (self-call)") != std::string::npos);
  }
  for (const char* a : {"", "10.44.2.10", "host", "host:0", "host:99999", ":80", "a b:80"}) {
    auto t = MapInboundAuthority(*snap, n.server, Ip("10.44.2.10"), a);
    CHECK_MESSAGE(t.status == 400, a);
  }
  CHECK(MapInboundAuthority(*snap, n.server, Ip("10.44.2.10"), "host:99999").reason ==
        "authority 'host:99999' is not ip:port or host:port");
}

TEST_CASE("destination_service guess as ztunnel: forwarded host only among the pod's services") {
  WorkloadStore store;
  Workload server = Pod("demo", "server", "10.44.2.10");
  Service web = Svc("demo", "web", "10.96.0.10", 80, 8080);
  Service admin = Svc("demo", "admin", "10.96.0.11", 9000, 0);  // named port: endpoint decides
  Service elsewhere = Svc("demo", "elsewhere", "10.96.0.12", 80, 8080);  // not backed by server
  Join(server, web);
  Join(server, admin, {{9000, 9443}});
  REQUIRE(store.UpsertWorkload(server).ok());
  for (auto* s : {&web, &admin, &elsewhere}) REQUIRE(store.UpsertService(*s).ok());
  auto snap = store.Build();
  const Workload& local = *snap->FindWorkload(server.uid);
  auto name = [&](uint16_t port, std::optional<std::string_view> host) -> std::string {
    const Service* s = GuessInboundService(*snap, local, port, host);
    return s == nullptr ? "none" : s->name;
  };
  // A forwarded host the pod backs wins over the port.
  CHECK(name(9443, "web.demo.svc.cluster.local") == "web");
  // A service the pod does not back cannot be claimed (no spoofing into metrics).
  CHECK(name(8080, "elsewhere.demo.svc.cluster.local") == "web");
  CHECK(name(1234, "elsewhere.demo.svc.cluster.local") == "none");
  // No forwarded host (plaintext 15006): by target port, then the endpoint's named port.
  CHECK(name(8080, std::nullopt) == "web");
  CHECK(name(9443, std::nullopt) == "admin");
  // The service port itself is not a target port.
  CHECK(name(80, std::nullopt) == "none");
}

TEST_CASE("x-forwarded-network: another network means through a gateway") {
  CHECK_FALSE(FromOtherNetwork(std::nullopt, "net-1"));
  CHECK_FALSE(FromOtherNetwork(std::string("net-1"), "net-1"));
  CHECK_FALSE(FromOtherNetwork(std::string("NET-1"), "net-1"));  // compared ignoring case
  CHECK(FromOtherNetwork(std::string("net-2"), "net-1"));
  CHECK(FromOtherNetwork(std::string(""), "net-1"));
}
