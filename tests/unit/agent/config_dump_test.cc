// agent/app/config_dump: /config_dump as ztunnel serializes it and istioctl
// ztunnel-config parses it, for every workload and service kind the mesh
// model holds; validated against tests/golden/config_dump.schema.json.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/app/config_dump.h"
#include "tests/unit/ambitctl/schema_check.h"

namespace ambit::agent {
namespace {

using json = nlohmann::json;

net::IpAddress Ip(std::string_view s) {
  auto ip = net::IpAddress::Parse(s);
  REQUIRE(ip.ok());
  return *ip;
}

mesh::Workload Wl(std::string name, std::string ip) {
  mesh::Workload w;
  w.uid = "Kubernetes//Pod/demo/" + name;
  w.name = std::move(name);
  w.ns = "demo";
  if (!ip.empty()) w.addresses = {Ip(ip)};
  w.protocol = mesh::TunnelProtocol::kHbone;
  w.trust_domain = "cluster.local";
  w.service_account = "default";
  w.cluster_id = "Kubernetes";
  w.node = "node-1";
  return w;
}

mesh::GatewayAddress ByHost(std::string ns, std::string host) {
  return {mesh::NamespacedHostname{std::move(ns), std::move(host)}, 15008};
}
mesh::GatewayAddress ByIp(std::string network, std::string_view ip, uint16_t port = 15008) {
  return {mesh::NetworkAddress{std::move(network), Ip(ip), 32}, port};
}

json Dump() {
  mesh::WorkloadStore store;
  mesh::Workload plain = Wl("plain", "10.0.0.1");
  plain.protocol = mesh::TunnelProtocol::kNone;
  plain.services["demo/web.demo.svc.cluster.local"] = {{80, 8080}};
  mesh::Workload waypointed = Wl("waypointed", "10.0.0.2");
  waypointed.waypoint = ByHost("demo", "waypoint.demo.svc.cluster.local");
  waypointed.authorization_policies = {"demo/allow"};
  waypointed.services["demo/web.demo.svc.cluster.local"] = {{80, 8080}};
  waypointed.services["demo/api.demo.svc.cluster.local"] = {{90, 9090}};
  mesh::Workload remote = Wl("remote", "10.9.0.3");
  remote.network = "net-2";
  remote.network_gateway = ByIp("net-2", "172.18.0.10", 15009);
  remote.waypoint = ByIp("", "10.96.0.9");
  remote.locality = {"eu-west1", "eu-west1-b", ""};
  mesh::Workload host_only = Wl("host-only", "");
  host_only.hostname = "db.example.com";
  host_only.workload_type = mesh::WorkloadType::kPod;
  mesh::Workload host_net = Wl("host-net", "10.0.0.5");
  host_net.network_mode = mesh::NetworkMode::kHostNetwork;
  host_net.native_tunnel = true;
  host_net.application_tunnel = mesh::ApplicationTunnel{mesh::AppTunnelProtocol::kProxy, 15088};
  mesh::Workload tunnel0 = Wl("tunnel0", "10.0.0.6");
  tunnel0.application_tunnel = mesh::ApplicationTunnel{mesh::AppTunnelProtocol::kNone, 0};
  for (auto* w : {&plain, &waypointed, &remote, &host_only, &host_net, &tunnel0}) {
    REQUIRE(store.UpsertWorkload(*w).ok());
  }

  mesh::Service web;
  web.name = "web";
  web.ns = "demo";
  web.hostname = "web.demo.svc.cluster.local";
  web.vips = {{"", Ip("10.96.0.1"), 32}, {"net-2", Ip("10.96.8.0"), 24}};
  web.ports = {{80, 8080}};
  web.waypoint = ByHost("demo", "waypoint.demo.svc.cluster.local");
  web.weighted_waypoints = {{ByHost("demo", "waypoint.demo.svc.cluster.local"), 90},
                            {ByIp("", "10.96.0.9"), 10}};
  web.load_balancing = mesh::LoadBalancing{
      {mesh::LbScope::kNetwork, mesh::LbScope::kZone}, mesh::LbMode::kFailover,
      mesh::HealthPolicy::kAllowAll};
  web.ip_families = mesh::IpFamilies::kDual;
  web.canonical = true;
  web.visibility = mesh::Visibility::kNamespace;
  mesh::Service api;
  api.name = "api";
  api.ns = "demo";
  api.hostname = "api.demo.svc.cluster.local";
  api.vips = {{"", Ip("fd00::10"), 128}};
  api.ports = {{90, 9090}};
  api.ip_families = mesh::IpFamilies::kIpv6Only;
  REQUIRE(store.UpsertService(web).ok());
  REQUIRE(store.UpsertService(api).ok());

  mesh::Policy p;
  p.ns = "demo";
  p.name = "allow";
  p.scope = mesh::PolicyScope::kWorkloadSelector;
  mesh::Match m;
  m.principals = {{mesh::StringMatch::Kind::kPresence, ""}};
  p.rules = {mesh::Rule{{mesh::Clause{{m}}}}};
  REQUIRE(store.UpsertPolicy(p).ok());

  auto snap = store.Build();
  DumpInputs in;
  in.snapshot = snap.get();
  in.version = "test";
  return json::parse(BuildConfigDump(in));
}

const json& Named(const json& list, std::string_view name) {
  for (const json& x : list) {
    if (x.at("name") == name) return x;
  }
  FAIL("no entry named " << name);
  static const json none;
  return none;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_CASE("config_dump conforms to the schema for every workload and service kind") {
  const char* dir = std::getenv("GOLDEN_DIR");
  REQUIRE_MESSAGE(dir != nullptr, "GOLDEN_DIR must be set (run through meson test)");
  const json schema = json::parse(ReadFile(std::string(dir) + "/config_dump.schema.json"));
  ambit::testing::SchemaCheck check(schema);
  CHECK(check.Check(Dump(), schema) == "");
}

TEST_CASE("workloads: services as ns/hostname strings, gateways as destination strings") {
  const json d = Dump();
  const json& ws = d.at("workloads");
  const json& waypointed = Named(ws, "waypointed");
  CHECK(waypointed.at("services") ==
        json::array({"demo/api.demo.svc.cluster.local", "demo/web.demo.svc.cluster.local"}));
  CHECK(waypointed.at("waypoint") ==
        json({{"destination", "demo/waypoint.demo.svc.cluster.local"}, {"hboneMtlsPort", 15008}}));
  CHECK(waypointed.at("authorizationPolicies") == json::array({"demo/allow"}));
  CHECK(waypointed.at("networkMode") == "Standard");
  CHECK(waypointed.at("capacity") == 1);

  const json& remote = Named(ws, "remote");
  CHECK(remote.at("network") == "net-2");
  CHECK(remote.at("networkGateway") ==
        json({{"destination", "net-2/172.18.0.10"}, {"hboneMtlsPort", 15009}}));
  CHECK(remote.at("waypoint").at("destination") == "/10.96.0.9");
  CHECK(remote.at("locality") ==
        json({{"region", "eu-west1"}, {"zone", "eu-west1-b"}, {"subzone", ""}}));

  // Unset optional fields are left out, as ztunnel's serde does.
  const json& plain = Named(ws, "plain");
  for (const char* absent : {"waypoint", "networkGateway", "network", "hostname", "locality",
                             "authorizationPolicies", "applicationTunnel", "nativeTunnel"}) {
    CAPTURE(absent);
    CHECK_FALSE(plain.contains(absent));
  }
  CHECK(plain.at("protocol") == "TCP");

  const json& host_only = Named(ws, "host-only");
  CHECK(host_only.at("hostname") == "db.example.com");
  CHECK(host_only.at("workloadIps") == json::array());
  CHECK(host_only.at("workloadType") == "pod");
  CHECK_FALSE(host_only.contains("services"));

  const json& host_net = Named(ws, "host-net");
  CHECK(host_net.at("networkMode") == "HostNetwork");
  CHECK(host_net.at("nativeTunnel") == true);
  CHECK(host_net.at("applicationTunnel") == json({{"protocol", "PROXY"}, {"port", 15088}}));
  CHECK(Named(ws, "tunnel0").at("applicationTunnel") ==
        json({{"protocol", "NONE"}, {"port", nullptr}}));
}

TEST_CASE("services: cidrVips, weightedWaypoints, loadBalancer, ipFamilies, visibility") {
  const json d = Dump();
  const json& web = Named(d.at("services"), "web");
  CHECK(web.at("vips") == json::array({"/10.96.0.1"}));
  CHECK(web.at("cidrVips") == json::array({{{"network", "net-2"}, {"cidr", "10.96.8.0/24"}}}));
  CHECK(web.at("waypoint").at("destination") == "demo/waypoint.demo.svc.cluster.local");
  CHECK(web.at("weightedWaypoints") ==
        json::array({{{"destination", {{"destination", "demo/waypoint.demo.svc.cluster.local"},
                                       {"hboneMtlsPort", 15008}}},
                      {"weight", 90}},
                     {{"destination", {{"destination", "/10.96.0.9"}, {"hboneMtlsPort", 15008}}},
                      {"weight", 10}}}));
  CHECK(web.at("loadBalancer") == json({{"routingPreferences", {"Network", "Zone"}},
                                        {"mode", "Failover"},
                                        {"healthPolicy", "AllowAll"}}));
  CHECK(web.at("ipFamilies") == "Dual");
  CHECK(web.at("canonical") == true);
  CHECK(web.at("visibility") == "Namespace");
  const json& ep = web.at("endpoints").at("Kubernetes//Pod/demo/waypointed");
  CHECK(ep == json({{"workloadUid", "Kubernetes//Pod/demo/waypointed"},
                    {"port", {{"80", 8080}}},
                    {"status", "Healthy"}}));

  const json& api = Named(d.at("services"), "api");
  CHECK(api.at("ipFamilies") == "IPv6");
  CHECK(api.at("visibility") == "Public");
  CHECK(api.at("canonical") == false);
  for (const char* absent : {"cidrVips", "waypoint", "weightedWaypoints", "loadBalancer"}) {
    CAPTURE(absent);
    CHECK_FALSE(api.contains(absent));
  }
}

TEST_CASE("policies: StringMatch Presence as serde writes a unit tuple variant") {
  const json d = Dump();
  const json& p = Named(d.at("policies"), "allow");
  CHECK(p.at("rules") == json::parse(R"([[[{"principals": [{"Presence": []}]}]]])"));
}

}  // namespace
}  // namespace ambit::agent
