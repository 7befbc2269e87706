// Conversion tables: Workload API protos → agent/state (ISTIO-COMPAT §5.2/§5.3).
#include "common/mesh/xds_adapters/convert.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <utility>

#include "common/mesh/xds_adapters/names.h"

namespace ambit::xds_adapters {
namespace {

namespace pw = ::istio::workload;
namespace ps = ::istio::security;

std::string V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return std::string{static_cast<char>(a), static_cast<char>(b), static_cast<char>(c),
                     static_cast<char>(d)};
}

net::IpAddress Ip(const char* text) { return *net::IpAddress::Parse(text); }

pw::Workload FullWorkload() {
  pw::Workload w;
  w.set_uid("Kubernetes//Pod/ns1/pod-a");
  w.set_name("pod-a");
  w.set_namespace_("ns1");
  w.add_addresses(V4(10, 0, 0, 7));
  std::string v6(16, '\0');
  v6[0] = static_cast<char>(0xfd);
  v6[15] = 1;
  w.add_addresses(v6);
  w.set_hostname("pod-a.example");
  w.set_network("net1");
  w.set_tunnel_protocol(pw::HBONE);
  w.set_trust_domain("td.example");
  w.set_service_account("sa1");
  w.mutable_waypoint()->mutable_hostname()->set_namespace_("ns1");
  w.mutable_waypoint()->mutable_hostname()->set_hostname("wp.ns1.svc.cluster.local");
  w.mutable_waypoint()->set_hbone_mtls_port(15009);
  w.mutable_network_gateway()->mutable_address()->set_network("net2");
  w.mutable_network_gateway()->mutable_address()->set_address(V4(192, 168, 1, 1));
  w.set_node("node-1");
  w.set_canonical_name("app-a");
  w.set_canonical_revision("v2");
  w.set_workload_type(pw::POD);
  w.set_workload_name("deploy-a");
  w.set_native_tunnel(true);
  w.mutable_application_tunnel()->set_protocol(pw::ApplicationTunnel::PROXY);
  w.mutable_application_tunnel()->set_port(15088);
  pw::Port* p = (*w.mutable_services())["ns1/svc.ns1.svc.cluster.local"].add_ports();
  p->set_service_port(80);
  p->set_target_port(8080);
  w.add_authorization_policies("ns1/allow-a");
  w.set_status(pw::UNHEALTHY);
  w.set_cluster_id("c1");
  w.mutable_locality()->set_region("r");
  w.mutable_locality()->set_zone("z");
  w.mutable_locality()->set_subzone("s");
  w.set_network_mode(pw::HOST_NETWORK);
  w.mutable_capacity()->set_value(7);
  return w;
}

TEST_CASE("workload: every field is mapped") {
  StatusOr<mesh::Workload> w = ConvertWorkload(FullWorkload());
  REQUIRE_MESSAGE(w.ok(), std::string(w.status().message()));
  CHECK(w->uid == "Kubernetes//Pod/ns1/pod-a");
  CHECK(w->name == "pod-a");
  CHECK(w->ns == "ns1");
  REQUIRE(w->addresses.size() == 2);
  CHECK(w->addresses[0] == Ip("10.0.0.7"));
  CHECK(w->addresses[1] == Ip("fd00::1"));
  CHECK(w->hostname == "pod-a.example");
  CHECK(w->network == "net1");
  CHECK(w->protocol == mesh::TunnelProtocol::kHbone);
  CHECK(w->trust_domain == "td.example");
  CHECK(w->service_account == "sa1");
  CHECK(w->Identity() == "spiffe://td.example/ns/ns1/sa/sa1");
  REQUIRE(w->waypoint.has_value());
  CHECK(std::get<mesh::NamespacedHostname>(w->waypoint->destination).Key() ==
        "ns1/wp.ns1.svc.cluster.local");
  CHECK(w->waypoint->hbone_mtls_port == 15009);
  REQUIRE(w->network_gateway.has_value());
  const auto& gw = std::get<mesh::NetworkAddress>(w->network_gateway->destination);
  CHECK(gw.network == "net2");
  CHECK(gw.ip == Ip("192.168.1.1"));
  CHECK(gw.prefix_len == 32);
  CHECK(w->network_gateway->hbone_mtls_port == 15008);  // 0 → default
  CHECK(w->node == "node-1");
  CHECK(w->canonical_name == "app-a");
  CHECK(w->canonical_revision == "v2");
  CHECK(w->workload_type == mesh::WorkloadType::kPod);
  CHECK(w->workload_name == "deploy-a");
  CHECK(w->native_tunnel);
  REQUIRE(w->application_tunnel.has_value());
  CHECK(w->application_tunnel->protocol == mesh::AppTunnelProtocol::kProxy);
  CHECK(w->application_tunnel->port == 15088);
  REQUIRE(w->services.count("ns1/svc.ns1.svc.cluster.local") == 1);
  CHECK(w->services.at("ns1/svc.ns1.svc.cluster.local") == mesh::PortMap{{80, 8080}});
  CHECK(w->authorization_policies == std::vector<std::string>{"ns1/allow-a"});
  CHECK(w->status == mesh::WorkloadStatus::kUnhealthy);
  CHECK(w->cluster_id == "c1");
  CHECK(w->locality.region == "r");
  CHECK(w->locality.zone == "z");
  CHECK(w->locality.subzone == "s");
  CHECK(w->network_mode == mesh::NetworkMode::kHostNetwork);
  CHECK(w->capacity == 7);
}

TEST_CASE("workload: defaults for empty trust domain, service account, cluster, capacity") {
  pw::Workload in;
  in.set_uid("u1");
  in.set_namespace_("ns");
  StatusOr<mesh::Workload> w = ConvertWorkload(in);
  REQUIRE(w.ok());
  CHECK(w->trust_domain == "cluster.local");
  CHECK(w->service_account == "default");
  CHECK(w->cluster_id == "Kubernetes");
  CHECK(w->capacity == 1);
  CHECK(w->protocol == mesh::TunnelProtocol::kNone);
  CHECK_FALSE(w->waypoint.has_value());
  CHECK_FALSE(w->application_tunnel.has_value());
  CHECK(w->addresses.empty());
}

TEST_CASE("workload: hostname-only (ServiceEntry resolution DNS) converts with no addresses") {
  pw::Workload in;
  in.set_uid("Kubernetes/networking.istio.io/ServiceEntry/ns1/ext/ext.example.test");
  in.set_name("ext");
  in.set_namespace_("ns1");
  in.set_hostname("ext.example.test");
  StatusOr<mesh::Workload> w = ConvertWorkload(in);
  REQUIRE_MESSAGE(w.ok(), w.status().ToString());
  CHECK(w->addresses.empty());
  CHECK(w->hostname == "ext.example.test");
  CHECK(w->protocol == mesh::TunnelProtocol::kNone);
}

TEST_CASE("workload: invalid input is rejected with the field named") {
  pw::Workload in = FullWorkload();
  SUBCASE("LEGACY_ISTIO_MTLS") {
    in.set_tunnel_protocol(pw::LEGACY_ISTIO_MTLS);
    StatusOr<mesh::Workload> w = ConvertWorkload(in);
    REQUIRE_FALSE(w.ok());
    CHECK(std::string(w.status().message()).find("LEGACY_ISTIO_MTLS") != std::string::npos);
  }
  SUBCASE("5-byte address") {
    in.add_addresses(std::string(5, '\1'));
    StatusOr<mesh::Workload> w = ConvertWorkload(in);
    REQUIRE_FALSE(w.ok());
    CHECK(std::string(w.status().message()) ==
          "addresses[2]: address has 5 bytes; want 4 (IPv4) or 16 (IPv6)");
  }
  SUBCASE("empty uid") {
    in.clear_uid();
    CHECK(std::string(ConvertWorkload(in).status().message()) == "workload: uid is empty");
  }
  SUBCASE("unknown tunnel protocol") {
    in.set_tunnel_protocol(static_cast<pw::TunnelProtocol>(9));
    CHECK(std::string(ConvertWorkload(in).status().message()) ==
          "tunnel_protocol: unknown value 9");
  }
  SUBCASE("waypoint without destination") {
    in.mutable_waypoint()->clear_hostname();
    CHECK(std::string(ConvertWorkload(in).status().message()) ==
          "waypoint: has neither hostname nor address");
  }
  SUBCASE("port above 65535") {
    (*in.mutable_services())["ns1/x"].add_ports()->set_service_port(70000);
    CHECK(std::string(ConvertWorkload(in).status().message()) ==
          "services[ns1/x]: port 70000 is above 65535");
  }
}

TEST_CASE("service: every field is mapped") {
  pw::Service in;
  in.set_name("svc");
  in.set_namespace_("ns1");
  in.set_hostname("svc.ns1.svc.cluster.local");
  pw::NetworkAddress* vip = in.add_addresses();
  vip->set_network("net1");
  vip->set_address(V4(10, 96, 0, 1));
  pw::NetworkAddress* cidr = in.add_addresses();
  cidr->set_address(V4(10, 97, 0, 0));
  cidr->set_length(16);
  pw::Port* p = in.add_ports();
  p->set_service_port(80);
  p->set_target_port(0);
  p->set_app_protocol(pw::HTTP2);
  pw::Port* grpc = in.add_ports();
  grpc->set_service_port(9090);
  grpc->set_target_port(9090);
  grpc->set_app_protocol(pw::GRPC);
  pw::Port* tcp = in.add_ports();  // no app_protocol: UNKNOWN, not stored
  tcp->set_service_port(5432);
  tcp->set_target_port(5432);
  in.add_subject_alt_names("spiffe://cluster.local/ns/ns1/sa/svc");
  in.mutable_waypoint()->mutable_address()->set_address(V4(10, 0, 0, 9));
  in.mutable_waypoint()->set_hbone_mtls_port(15008);
  in.mutable_load_balancing()->add_routing_preference(pw::LoadBalancing::ZONE);
  in.mutable_load_balancing()->add_routing_preference(pw::LoadBalancing::NODE);
  in.mutable_load_balancing()->set_mode(pw::LoadBalancing::FAILOVER);
  in.mutable_load_balancing()->set_health_policy(pw::LoadBalancing::ALLOW_ALL);
  in.set_ip_families(pw::DUAL);
  in.set_canonical(true);
  pw::WeightedWaypoint* ww = in.add_weighted_waypoints();
  ww->mutable_destination()->mutable_hostname()->set_namespace_("ns1");
  ww->mutable_destination()->mutable_hostname()->set_hostname("wp2");
  ww->set_weight(30);
  in.set_visibility(pw::Service::NAMESPACE);

  StatusOr<mesh::Service> s = ConvertService(in);
  REQUIRE_MESSAGE(s.ok(), std::string(s.status().message()));
  CHECK(s->Key() == "ns1/svc.ns1.svc.cluster.local");
  CHECK(s->name == "svc");
  REQUIRE(s->vips.size() == 2);
  CHECK(s->vips[0] == mesh::NetworkAddress{"net1", Ip("10.96.0.1"), 32});
  CHECK(s->vips[1] == mesh::NetworkAddress{"", Ip("10.97.0.0"), 16});
  CHECK(s->vips[1].IsCidr());
  CHECK(s->ports == mesh::PortMap{{80, 0}, {5432, 5432}, {9090, 9090}});
  CHECK(s->port_protocols == std::map<uint16_t, mesh::AppProtocol>{
                                 {80, mesh::AppProtocol::kHttp2}, {9090, mesh::AppProtocol::kGrpc}});
  CHECK(s->PortProtocol(5432) == mesh::AppProtocol::kUnknown);
  CHECK(s->port_names.empty());  // xDS carries no port names
  CHECK(s->subject_alt_names == std::vector<std::string>{"spiffe://cluster.local/ns/ns1/sa/svc"});
  REQUIRE(s->waypoint.has_value());
  CHECK(std::get<mesh::NetworkAddress>(s->waypoint->destination).ip == Ip("10.0.0.9"));
  REQUIRE(s->load_balancing.has_value());
  CHECK(s->load_balancing->routing_preference ==
        std::vector<mesh::LbScope>{mesh::LbScope::kZone, mesh::LbScope::kNode});
  CHECK(s->load_balancing->mode == mesh::LbMode::kFailover);
  CHECK(s->health_policy() == mesh::HealthPolicy::kAllowAll);
  CHECK(s->ip_families == mesh::IpFamilies::kDual);
  CHECK(s->canonical);
  REQUIRE(s->weighted_waypoints.size() == 1);
  CHECK(s->weighted_waypoints[0].weight == 30);
  CHECK(std::get<mesh::NamespacedHostname>(s->weighted_waypoints[0].destination.destination)
            .hostname == "wp2");
  CHECK(s->visibility == mesh::Visibility::kNamespace);

  SUBCASE("every AppProtocol value; unknown values are UNKNOWN, not a rejection") {
    const std::pair<int, mesh::AppProtocol> table[] = {
        {pw::UNKNOWN, mesh::AppProtocol::kUnknown}, {pw::HTTP11, mesh::AppProtocol::kHttp11},
        {pw::HTTP2, mesh::AppProtocol::kHttp2},     {pw::GRPC, mesh::AppProtocol::kGrpc},
        {pw::TCP, mesh::AppProtocol::kTcp},         {pw::TLS, mesh::AppProtocol::kTls},
        {6, mesh::AppProtocol::kUnknown},           {1000, mesh::AppProtocol::kUnknown}};
    for (const auto& [wire, want] : table) {
      in.mutable_ports(0)->set_app_protocol(static_cast<pw::AppProtocol>(wire));
      StatusOr<mesh::Service> c = ConvertService(in);
      REQUIRE_MESSAGE(c.ok(), wire);
      CHECK_MESSAGE(c->PortProtocol(80) == want, wire);
    }
  }
  SUBCASE("bad CIDR length") {
    in.mutable_addresses(1)->set_length(33);
    CHECK(std::string(ConvertService(in).status().message()) ==
          "addresses[1]: prefix length 33 is above 32");
  }
  SUBCASE("missing hostname") {
    in.clear_hostname();
    CHECK_FALSE(ConvertService(in).ok());
  }
}

TEST_CASE("address: oneof dispatch") {
  pw::Address a;
  CHECK(std::string(ConvertAddress(a).status().message()) ==
        "Address: has neither workload nor service");
  *a.mutable_workload() = FullWorkload();
  auto w = ConvertAddress(a);
  REQUIRE(w.ok());
  CHECK(std::holds_alternative<mesh::Workload>(*w));
}

TEST_CASE("authorization: every field is mapped") {
  ps::Authorization in;
  in.set_name("allow-a");
  in.set_namespace_("ns1");
  in.set_scope(ps::WORKLOAD_SELECTOR);
  in.set_action(ps::DENY);
  in.set_dry_run(true);
  ps::Match* m = in.add_rules()->add_clauses()->add_matches();
  m->add_namespaces()->set_exact("ns2");
  m->add_not_namespaces()->set_prefix("kube-");
  m->add_principals()->set_suffix("/sa/client");
  m->add_not_principals()->mutable_presence();
  ps::Address* src = m->add_source_ips();
  src->set_address(V4(10, 1, 0, 0));
  src->set_length(16);
  ps::Address* nsrc = m->add_not_source_ips();
  nsrc->set_address(V4(10, 1, 2, 3));
  nsrc->set_length(32);
  ps::Address* dst = m->add_destination_ips();
  dst->set_address(V4(10, 2, 0, 0));
  dst->set_length(8);
  ps::Address* ndst = m->add_not_destination_ips();
  ndst->set_address(V4(10, 3, 0, 1));
  ndst->set_length(32);
  m->add_destination_ports(8080);
  m->add_not_destination_ports(9999);
  ps::ServiceAccountMatch* sa = m->add_service_accounts();
  sa->set_namespace_("ns2");
  sa->set_serviceaccount("client");
  ps::ServiceAccountMatch* nsa = m->add_not_service_accounts();
  nsa->set_namespace_("ns3");
  nsa->set_serviceaccount("bad");

  StatusOr<mesh::Policy> p = ConvertAuthorization(in);
  REQUIRE_MESSAGE(p.ok(), std::string(p.status().message()));
  CHECK(p->Key() == "ns1/allow-a");
  CHECK(p->scope == mesh::PolicyScope::kWorkloadSelector);
  CHECK(p->action == mesh::PolicyAction::kDeny);
  CHECK(p->dry_run);
  REQUIRE(p->rules.size() == 1);
  REQUIRE(p->rules[0].clauses.size() == 1);
  REQUIRE(p->rules[0].clauses[0].matches.size() == 1);
  const mesh::Match& o = p->rules[0].clauses[0].matches[0];
  REQUIRE(o.namespaces.size() == 1);
  CHECK(o.namespaces[0].kind == mesh::StringMatch::Kind::kExact);
  CHECK(o.namespaces[0].value == "ns2");
  CHECK(o.not_namespaces[0].kind == mesh::StringMatch::Kind::kPrefix);
  CHECK(o.not_namespaces[0].value == "kube-");
  CHECK(o.principals[0].kind == mesh::StringMatch::Kind::kSuffix);
  CHECK(o.principals[0].value == "/sa/client");
  CHECK(o.not_principals[0].kind == mesh::StringMatch::Kind::kPresence);
  CHECK(o.source_ips[0].ToString() == "10.1.0.0/16");
  CHECK(o.not_source_ips[0].ToString() == "10.1.2.3/32");
  CHECK(o.destination_ips[0].ToString() == "10.0.0.0/8");
  CHECK(o.not_destination_ips[0].ToString() == "10.3.0.1/32");
  CHECK(o.destination_ports == std::vector<uint16_t>{8080});
  CHECK(o.not_destination_ports == std::vector<uint16_t>{9999});
  CHECK(o.service_accounts[0].ns == "ns2");
  CHECK(o.service_accounts[0].service_account == "client");
  CHECK(o.not_service_accounts[0].service_account == "bad");

  SUBCASE("empty StringMatch") {
    m->add_principals();
    CHECK(std::string(ConvertAuthorization(in).status().message()) ==
          "principals: a StringMatch has no exact, prefix, suffix or presence");
  }
  SUBCASE("port above 65535") {
    m->add_destination_ports(65536);
    CHECK(std::string(ConvertAuthorization(in).status().message()) ==
          "destination_ports: port 65536 is above 65535");
  }
  SUBCASE("bad address") {
    m->add_source_ips()->set_address("abc");
    CHECK_FALSE(ConvertAuthorization(in).ok());
  }
  SUBCASE("unknown action") {
    in.set_action(static_cast<ps::Action>(5));
    CHECK(std::string(ConvertAuthorization(in).status().message()) == "action: unknown value 5");
  }
}

TEST_CASE("removal names: ns/host parses, uids and other shapes do not") {
  auto k = ParseServiceKey("ns1/svc.ns1.svc.cluster.local");
  REQUIRE(k.has_value());
  CHECK(k->ns == "ns1");
  CHECK(k->hostname == "svc.ns1.svc.cluster.local");
  CHECK_FALSE(ParseServiceKey("Kubernetes//Pod/ns1/pod-a").has_value());
  CHECK_FALSE(ParseServiceKey("noslash").has_value());
  CHECK_FALSE(ParseServiceKey("/host").has_value());
  CHECK_FALSE(ParseServiceKey("ns/").has_value());
}

}  // namespace
}  // namespace ambit::xds_adapters
