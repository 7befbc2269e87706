// Local config loader: example files, the full shape, and exact error texts.
#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "common/config/loader.h"

using namespace ambit::config;

TEST_CASE("tools/examples/demo.yaml parses") {
  auto cfg = LoadLocalConfigFile(AMBIT_SOURCE_ROOT "/tools/examples/demo.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  REQUIRE(cfg->workloads.size() == 4);
  const WorkloadConfig& c = cfg->workloads[0];
  CHECK(c.name == "client");
  CHECK(c.ns == "demo");
  CHECK(c.service_account == "sleep");
  CHECK(c.workload_ips == std::vector<std::string>{"10.44.1.10"});
  CHECK(c.netns == "/var/run/netns/ambit-demo-client");
  CHECK(c.protocol == Protocol::kHbone);
  CHECK(c.labels.at("app") == "client");
  CHECK(cfg->workloads[2].workload_ips[0] == "10.44.2.11");
  CHECK(cfg->workloads[1].services.at("demo/httpbin.demo.svc.cluster.local").at(80) == 8080);
  CHECK(cfg->workloads[3].labels.at("gateway.networking.k8s.io/gateway-name") == "waypoint");
  CHECK(cfg->workloads[3].netns.empty());  // the waypoint pod: no agent captures it
  REQUIRE(cfg->services.size() == 3);
  CHECK(cfg->services[0].vips[0].network.empty());
  CHECK(cfg->services[0].vips[0].ip == "10.96.0.10");
  CHECK(cfg->services[0].ports.at(80) == 8080);
  REQUIRE(cfg->services[1].waypoint.has_value());
  CHECK(cfg->services[1].waypoint->hostname == "waypoint.demo.svc.cluster.local");
}

TEST_CASE("full local shape, policies and Kubernetes resources") {
  const char* yaml = R"(workloads:
- name: local
  namespace: default
  workloadIps: ["127.0.0.1", "::1"]
  protocol: HBONE
  status: Unhealthy
  networkMode: HostNetwork
  capacity: 7
  locality: {region: r1, zone: z1}
  applicationTunnel: {protocol: PROXY, port: 15088}
  waypoint: {destination: "net1/10.0.0.9", hboneMtlsPort: 15009}
  networkGateway: {destination: {namespace: istio-system, hostname: ew.example}}
  authorizationPolicies: [default/p1]
services:
- name: svc
  namespace: default
  hostname: svc.default.svc.cluster.local
  vips: ["/127.10.0.1", "fd00::10"]
  cidrVips: ["/10.50.0.0/16"]
  ports: {80: 8080, 443: 0}
  subjectAltNames: [spiffe://cluster.local/ns/default/sa/x]
  weightedWaypoints:
  - {destination: {namespace: default, hostname: wp}, weight: 3}
  loadBalancer: {routingPreferences: [Network, Zone], mode: Failover, healthPolicy: AllowAll}
  ipFamilies: Dual
  canonical: true
  visibility: Namespace
policies:
- name: p1
  namespace: default
  scope: WorkloadSelector
  action: Deny
  dryRun: true
  rules:
  - - - notDestinationPorts: [9999]
        principals: [{Prefix: cluster.local/}, {Presence: {}}]
        sourceIps: ["10.0.0.0/8", "10.1.2.3"]
        serviceAccounts: [{namespace: a, serviceAccount: b}]
resources:
- apiVersion: security.istio.io/v1
  kind: PeerAuthentication
  metadata: {name: strict, namespace: istio-system}
  spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-sleep
  namespace: demo
spec:
  action: ALLOW
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
)";
  auto cfg = ParseLocalConfig(yaml, "config.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  const WorkloadConfig& w = cfg->workloads.at(0);
  CHECK(w.workload_ips.size() == 2);
  CHECK(w.status == HealthStatus::kUnhealthy);
  CHECK(w.network_mode == NetworkMode::kHostNetwork);
  CHECK(w.capacity == 7);
  CHECK(w.locality.zone == "z1");
  CHECK(w.application_tunnel->port == 15088);
  CHECK(w.application_tunnel->protocol == AppTunnelProtocol::kProxy);
  CHECK(w.waypoint->address->network == "net1");
  CHECK(w.waypoint->address->ip == "10.0.0.9");
  CHECK(w.waypoint->hbone_mtls_port == 15009);
  CHECK(w.network_gateway->hostname == "ew.example");
  CHECK(w.trust_domain.empty());  // not defaulted in this format
  const ServiceConfig& s = cfg->services.at(0);
  CHECK(s.vips.size() == 2);
  CHECK(s.vips[1].ip == "fd00::10");
  CHECK(*s.cidr_vips[0].prefix_len == 16);
  CHECK(s.ports.at(443) == 0);
  CHECK(s.weighted_waypoints[0].weight == 3);
  CHECK(s.weighted_waypoints[0].destination.hostname == "wp");
  CHECK(s.load_balancer->mode == LbMode::kFailover);
  CHECK(s.load_balancer->routing_preferences[0] == Scope::kNetwork);
  CHECK(s.load_balancer->health_policy == HealthPolicy::kAllowAll);
  CHECK(s.visibility == Visibility::kNamespace);
  CHECK(s.ip_families == IpFamilies::kDual);
  const PolicyConfig& p = cfg->policies.at(0);
  CHECK(p.action == PolicyAction::kDeny);
  CHECK(p.scope == PolicyScope::kWorkloadSelector);
  CHECK(p.dry_run);
  const MatchConfig& m = p.rules.at(0).at(0).at(0);
  CHECK(m.not_destination_ports == std::vector<uint16_t>{9999});
  CHECK(m.principals[0].kind == StringMatchKind::kPrefix);
  CHECK(m.principals[1].kind == StringMatchKind::kPresence);
  CHECK(m.source_ips[1].prefix_len == 32);
  CHECK(m.service_accounts[0].service_account == "b");
  REQUIRE(cfg->resources.size() == 2);
  CHECK(cfg->resources[0].kind == "PeerAuthentication");
  CHECK(cfg->resources[0].ns == "istio-system");
  CHECK(cfg->resources[1].kind == "AuthorizationPolicy");
  CHECK(cfg->resources[1].name == "allow-sleep");
  CHECK(cfg->resources[1].line == 45);
  CHECK(cfg->resources[1].raw_yaml.find("action: ALLOW") != std::string::npos);
  REQUIRE(cfg->warnings.size() == 1);
  CHECK(cfg->warnings[0] == "config.yaml:53: unsupported kind 'ConfigMap' (other) ignored");
}

TEST_CASE("empty file and empty documents are an empty config") {
  auto cfg = ParseLocalConfig("", "e.yaml");
  REQUIRE(cfg.ok());
  CHECK(cfg->workloads.empty());
  cfg = ParseLocalConfig("---\n---\nworkloads: []\n", "e.yaml");
  REQUIRE(cfg.ok());
}

TEST_CASE("bad inputs give file:line: field: message") {
  struct Case {
    const char* yaml;
    const char* error;
  };
  const std::string deep = std::string(40, '[') + std::string(40, ']');
  const Case cases[] = {
      {"workloads:\n- {name: a, namespace: b, workloadIps: []}\n"
       "- name: c\n  namespace: d\n  workloadIps: [\"x\"]\n",
       "config.yaml:5: workloads[1].workloadIps[0]: 'x' is not an IP address"},
      {"workloads:\n- name: a\n  namespace: b\n  workloadIps: []\n  bogus: 1\n",
       "config.yaml:5: workloads[0].bogus: unknown field"},
      {"workloads:\n- name: a\n  workloadIps: []\n",
       "config.yaml:2: workloads[0].namespace: required field is missing"},
      {"workloads:\n- name: a\n  namespace: b\n",
       "config.yaml:2: workloads[0].workloadIps: required field is missing"},
      {"workloads:\n- name: a\n  namespace: b\n  workloadIps: []\n  protocol: QUIC\n",
       "config.yaml:5: workloads[0].protocol: 'QUIC' is not one of TCP|HBONE"},
      {"workloads:\n- name: a\n  namespace: b\n  workloadIps: []\n  capacity: -1\n",
       "config.yaml:5: workloads[0].capacity: '-1' is not a non-negative integer"},
      {"workloads:\n- name: a\n  namespace: b\n  workloadIps: []\n  services: {nohost: {80: 8080}}\n",
       "config.yaml:5: workloads[0].services[\"nohost\"]: key must be \"<namespace>/<hostname>\""},
      {"services:\n- name: s\n  namespace: n\n  hostname: h\n  ports: {80: 70000}\n",
       "config.yaml:5: services[0].ports.80: 70000 is out of range (max 65535)"},
      {"services:\n- name: s\n  namespace: n\n  hostname: h\n  vips: [\"net/10.0.0.300\"]\n",
       "config.yaml:5: services[0].vips[0]: '10.0.0.300' is not an IP address"},
      {"services:\n- name: s\n  namespace: n\n  hostname: h\n  loadBalancer: {mode: Random}\n",
       "config.yaml:5: services[0].loadBalancer.mode: 'Random' is not one of "
       "Standard|Strict|Failover|Passthrough"},
      {"policies:\n- name: p\n  namespace: n\n  rules: [[[{sourceIps: [\"10.0.0.0/33\"]}]]]\n",
       "config.yaml:4: policies[0].rules[0][0][0].sourceIps[0]: '10.0.0.0/33' has an invalid "
       "prefix length"},
      {"policies:\n- name: p\n  namespace: n\n  rules: [[[{principals: [{Regex: x}]}]]]\n",
       "config.yaml:4: policies[0].rules[0][0][0].principals[0]: 'Regex' is not one of "
       "Exact|Prefix|Suffix|Presence"},
      {"policies:\n- name: p\n  namespace: n\n  dryRun: maybe\n",
       "config.yaml:4: policies[0].dryRun: 'maybe' is not a boolean (true|false)"},
      {"workload: []\n", "config.yaml:1: workload: unknown field"},
      {"workloads: {}\n", "config.yaml:1: workloads: expected a list"},
      {"workloads: [\n", "config.yaml:2: YAML syntax error: end of sequence flow not found"},
      {"---\napiVersion: v1\nkind: AuthorizationPolicy\nmetadata: {namespace: x}\n",
       "config.yaml:4: metadata.name: required field is missing"},
  };
  for (const Case& c : cases) {
    auto cfg = ParseLocalConfig(c.yaml, "config.yaml");
    REQUIRE_MESSAGE(!cfg.ok(), c.yaml);
    CHECK(cfg.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(cfg.status().message()) == c.error);
  }
  auto d = ParseLocalConfig("resources: " + deep + "\n", "config.yaml");
  REQUIRE(!d.ok());
  CHECK(std::string(d.status().message()) ==
        "config.yaml:1: <top>: nesting deeper than 32 levels");
  // Far deeper than yaml-cpp's own recursion guard: still a clean error.
  d = ParseLocalConfig("workloads: " + std::string(100000, '[') + "\n", "config.yaml");
  REQUIRE(!d.ok());
  // (yaml-cpp reports where its scanner stood, which may be past the line.)
  CHECK(std::string(d.status().message()).starts_with("config.yaml:"));
  CHECK(std::string(d.status().message()).ends_with(": YAML nesting too deep (max 32 levels)"));
  // Self-referencing alias is bounded by the depth check.
  d = ParseLocalConfig("resources: &x [*x]\n", "config.yaml");
  REQUIRE(!d.ok());
  CHECK(std::string(d.status().message()) ==
        "config.yaml:1: <top>: nesting deeper than 32 levels");
}

TEST_CASE("missing file is NotFound with the path") {
  auto cfg = LoadLocalConfigFile("/nonexistent/ambit.yaml");
  REQUIRE(!cfg.ok());
  CHECK(cfg.status().code() == absl::StatusCode::kNotFound);
  CHECK(std::string(cfg.status().message()).find("/nonexistent/ambit.yaml") == 0);
}

TEST_CASE("streams that made yaml-cpp's LoadAll loop forever return promptly") {
  // Found by tests/fuzz/fuzz_local_config: LoadAll allocated until OOM.
  // yaml-cpp reads these as empty documents or a syntax error; either way
  // the parse ends and yields no workloads.
  for (const char* text : {",", " ,", "&<,[]", ",\n---\n,\n"}) {
    auto cfg = ambit::config::ParseLocalConfig(text, "config.yaml");
    if (cfg.ok()) CHECK(cfg->workloads.empty());
  }
  auto two = ambit::config::ParseLocalConfig("workloads: []\n---\nservices: []\n...\n---\npolicies: []\n",
                                             "config.yaml");
  CHECK(two.ok());
}

TEST_CASE("service ports: ztunnel's map, Kubernetes objects in the map, and the list form") {
  const char* yaml = R"(services:
- name: s
  namespace: n
  hostname: s.n.svc.cluster.local
  ports:
    80: 8080
    81: 0
    9090: {targetPort: 9091, appProtocol: grpc, name: grpc-api}
    9443: {name: https}
    8000: {targetPort: web-port}
- name: k
  namespace: n
  hostname: k.n.svc.cluster.local
  labels: {istio.io/use-waypoint: wp}
  ports:
  - 5432
  - {port: 80, targetPort: 8080, appProtocol: kubernetes.io/h2c, name: http}
  - {port: 443, appProtocol: https}
  - {port: 8081, targetPort: metrics}
)";
  auto cfg = ParseLocalConfig(yaml, "c.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  const ServiceConfig& s = cfg->services[0];
  CHECK(s.ports == PortMap{{80, 8080}, {81, 0}, {8000, 0}, {9090, 9091}, {9443, 9443}});
  REQUIRE(s.port_details.size() == 2);  // 8000 has neither a name nor an appProtocol
  CHECK(s.port_details.at(9090).name == "grpc-api");
  CHECK(s.port_details.at(9090).app_protocol == std::optional<std::string>("grpc"));
  CHECK(s.port_details.at(9443).name == "https");
  CHECK_FALSE(s.port_details.at(9443).app_protocol.has_value());
  const ServiceConfig& k = cfg->services[1];
  CHECK(k.ports == PortMap{{80, 8080}, {443, 443}, {5432, 5432}, {8081, 0}});
  CHECK(k.port_details.at(80).app_protocol == std::optional<std::string>("kubernetes.io/h2c"));
  CHECK(k.port_details.at(80).name == "http");
  CHECK(k.port_details.at(443).app_protocol == std::optional<std::string>("https"));
  CHECK(k.labels.at("istio.io/use-waypoint") == "wp");
}

TEST_CASE("namespaces and Gateways (document, resources entry, gateways entry)") {
  const char* yaml = R"(namespaces:
- name: app
  labels: {istio.io/use-waypoint: wp}
- name: empty
gateways:
- metadata: {name: g1, namespace: infra, labels: {istio.io/waypoint-for: workload}}
  spec: {gatewayClassName: ambit-waypoint}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp}
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - {name: other, port: 80, protocol: HTTP}
  - {name: bare, port: 15008, protocol: HBONE}
  - name: mesh
    port: 15008
    protocol: HBONE
    allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: a}}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec: {selector: {istio: ingressgateway}}
)";
  auto cfg = ParseLocalConfig(yaml, "c.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  REQUIRE(cfg->namespaces.size() == 2);
  CHECK(cfg->namespaces[0].labels.at("istio.io/use-waypoint") == "wp");
  CHECK(cfg->namespaces[1].labels.empty());
  REQUIRE(cfg->gateways.size() == 2);  // Istio's own Gateway kind is not one of them
  CHECK(cfg->gateways[0].name == "g1");
  CHECK(cfg->gateways[0].class_name == "ambit-waypoint");
  CHECK(cfg->gateways[0].labels.at("istio.io/waypoint-for") == "workload");
  CHECK(cfg->gateways[0].allowed == AllowedNamespaces::kSame);
  CHECK(cfg->gateways[1].ns == "default");
  CHECK(cfg->gateways[1].line == 9);
  CHECK(cfg->gateways[1].allowed == AllowedNamespaces::kSame);  // the first HBONE listener
  // A listener without allowedRoutes (yaml-cpp throws on type queries of
  // absent nodes: this once crashed the loader into "invalid node").
  CHECK(cfg->gateways[1].allowed_selector.empty());
  CHECK(cfg->resources.size() == 2);  // both Gateway documents stay verbatim for the waypoint
}

TEST_CASE("bad ports, namespaces and gateways: file:line: field: message") {
  struct Case {
    const char* yaml;
    const char* error;
  };
  const std::string svc = "services:\n- name: s\n  namespace: n\n  hostname: h\n  ports:\n";
  const Case cases[] = {
      {"    80: {targetPort: 8080, appProtocol: [http]}\n",
       "c.yaml:6: services[0].ports.80.appProtocol: expected a string"},
      {"    80: {appProtocol: \"\"}\n",
       "c.yaml:6: services[0].ports.80.appProtocol: '' is not a valid appProtocol (a non-empty "
       "name without spaces, e.g. http, http2, grpc, tcp, tls, kubernetes.io/h2c)"},
      {"    80: {appProtocol: \"http 2\"}\n",
       "c.yaml:6: services[0].ports.80.appProtocol: 'http 2' is not a valid appProtocol (a "
       "non-empty name without spaces, e.g. http, http2, grpc, tcp, tls, kubernetes.io/h2c)"},
      {"    80: {name: HTTP}\n",
       "c.yaml:6: services[0].ports.80.name: 'HTTP' is not a valid port name (lower-case "
       "letters, digits and '-', at most 63, starting and ending alphanumeric)"},
      {"    80: {targetPort: my--port}\n",
       "c.yaml:6: services[0].ports.80.targetPort: 'my--port' is neither a port number nor a "
       "port name (1-15 of a-z, 0-9, '-', with a letter)"},
      {"    80: {targetPort: 70000}\n",
       "c.yaml:6: services[0].ports.80.targetPort: 70000 is out of range (max 65535)"},
      {"    80: {port: 80}\n", "c.yaml:6: services[0].ports.80.port: unknown field"},
      {"    80: [8080]\n", "c.yaml:6: services[0].ports.80: expected a port number"},
      {"  - {targetPort: 80}\n", "c.yaml:6: services[0].ports[0].port: required field is missing"},
      {"  - 80\n  - {port: 80, name: http}\n", "c.yaml:7: services[0].ports[1]: duplicate port 80"},
      {"  - 0\n", "c.yaml:6: services[0].ports[0]: port 0 is not allowed"},
      {"  - {port: 80, tls: true}\n", "c.yaml:6: services[0].ports[0].tls: unknown field"},
      {"    \"http\"\n",
       "c.yaml:6: services[0].ports: expected a mapping {port: targetPort} or a list"},
  };
  for (const Case& c : cases) {
    auto cfg = ParseLocalConfig(svc + c.yaml, "c.yaml");
    REQUIRE_MESSAGE(!cfg.ok(), c.yaml);
    CHECK(std::string(cfg.status().message()) == c.error);
  }
  const Case others[] = {
      {"namespaces:\n- {labels: {a: b}}\n", "c.yaml:2: namespaces[0].name: required field is missing"},
      {"namespaces:\n- {name: a, color: red}\n", "c.yaml:2: namespaces[0].color: unknown field"},
      {"namespaces:\n- name: a\n  labels: [x]\n", "c.yaml:3: namespaces[0].labels: expected a mapping"},
      {"gateways:\n- metadata: {name: g, labels: {istio.io/waypoint-for: services}}\n"
       "  spec: {gatewayClassName: istio-waypoint}\n",
       "c.yaml:2: gateways[0].metadata.labels.istio.io/waypoint-for: 'services' is not one of "
       "service|workload|all|none"},
      {"gateways:\n- metadata: {name: g}\n",
       "c.yaml:2: gateways[0].spec: required field is missing"},
      {"gateways:\n- kind: HTTPRoute\n  metadata: {name: g}\n  spec: {}\n",
       "c.yaml:2: gateways[0]: 'gateway.networking.k8s.io/v1' HTTPRoute is not a Gateway API "
       "Gateway (gateway.networking.k8s.io/v1 Gateway)"},
      {"---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
       "spec:\n  gatewayClassName: istio-waypoint\n  listeners:\n"
       "  - {port: 15008, protocol: HBONE, allowedRoutes: {namespaces: {from: Everyone}}}\n",
       "c.yaml:8: spec.listeners[0].allowedRoutes.namespaces.from: 'Everyone' is not one of "
       "Same|All|Selector"},
      {"gateways:\n- metadata: {name: g}\n  spec:\n    gatewayClassName: istio-waypoint\n"
       "    listeners:\n    - {port: 15008, protocol: HBONE, allowedRoutes: {namespaces: {from: Selector}}}\n",
       "c.yaml:6: gateways[0].spec.listeners[0].allowedRoutes.namespaces.selector: from: Selector "
       "needs selector.matchLabels"},
      {"gateways:\n- metadata: {name: g}\n  spec:\n    gatewayClassName: istio-waypoint\n"
       "    listeners:\n    - {port: 15008, protocol: HBONE, allowedRoutes: [All]}\n",
       "c.yaml:6: gateways[0].spec.listeners[0].allowedRoutes: expected a mapping"},
  };
  for (const Case& c : others) {
    auto cfg = ParseLocalConfig(c.yaml, "c.yaml");
    REQUIRE_MESSAGE(!cfg.ok(), c.yaml);
    CHECK(std::string(cfg.status().message()) == c.error);
  }
}

TEST_CASE("the local_config fuzz seeds for ports, namespaces and Gateways are valid configs") {
  for (const char* name : {"ports_forms.yaml", "waypoint_binding.yaml",
                           "gateway_listener_no_routes.yaml"}) {
    auto cfg = LoadLocalConfigFile(std::string(AMBIT_SOURCE_ROOT "/tests/fuzz/corpus/local_config/") +
                                   name);
    CHECK_MESSAGE(cfg.ok(), name, ": ", cfg.status().ToString());
  }
}

TEST_CASE("GRPCRoute and ReferenceGrant documents are kept for the waypoint's route compiler") {
  auto cfg = ParseLocalConfig(R"(apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: demo}
spec: {}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: rg, namespace: other}
spec: {}
)", "config.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  REQUIRE(cfg->resources.size() == 2);
  CHECK(cfg->resources[0].kind == "GRPCRoute");
  CHECK(cfg->resources[1].kind == "ReferenceGrant");
  CHECK(cfg->resources[1].line == 6);
  CHECK(cfg->warnings.empty());
}
