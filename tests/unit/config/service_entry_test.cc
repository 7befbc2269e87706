// ServiceEntry documents in the standalone YAML: services per host, one
// workload per endpoint, hostname-only workloads for resolution DNS.
#include <doctest/doctest.h>

#include <string>

#include "common/config/loader.h"

using namespace ambit::config;

TEST_CASE("ServiceEntry resolution DNS: hostname endpoints become hostname-only workloads") {
  auto cfg = ParseLocalConfig(R"(---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: app}
spec:
  hosts: [ext.example.test]
  addresses: [240.240.0.10]
  location: MESH_EXTERNAL
  resolution: DNS
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 8080}
  - {number: 443, name: tls, protocol: TLS}
  endpoints:
  - {address: a.ext.example.test, ports: {http: 9080}}
  - {address: 192.0.2.5, labels: {app: ext}}
)", "se.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  REQUIRE(cfg->services.size() == 1);
  const ServiceConfig& s = cfg->services[0];
  CHECK(s.name == "ext");
  CHECK(s.ns == "app");
  CHECK(s.hostname == "ext.example.test");
  REQUIRE(s.vips.size() == 1);
  CHECK(s.vips[0].ip == "240.240.0.10");
  CHECK(s.ports.at(80) == 8080);
  CHECK(s.ports.at(443) == 443);
  CHECK(s.port_details.at(80).app_protocol == std::optional<std::string>("http"));
  CHECK(!s.load_balancer.has_value());
  REQUIRE(cfg->workloads.size() == 2);
  const WorkloadConfig& h = cfg->workloads[0];
  CHECK(h.hostname == "a.ext.example.test");
  CHECK(h.workload_ips.empty());
  CHECK(h.uid == "Kubernetes/networking.istio.io/ServiceEntry/app/ext/a.ext.example.test");
  CHECK(h.services.at("app/ext.example.test").at(80) == 9080);
  CHECK(h.services.at("app/ext.example.test").count(443) == 0);
  const WorkloadConfig& ip = cfg->workloads[1];
  CHECK(ip.hostname.empty());
  CHECK(ip.workload_ips == std::vector<std::string>{"192.0.2.5"});
  CHECK(ip.labels.at("app") == "ext");
  CHECK(cfg->warnings.empty());
}

TEST_CASE("ServiceEntry resolution DNS without endpoints resolves each host") {
  auto cfg = ParseLocalConfig(R"(---
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [one.example.test, two.example.test]
  resolution: DNS
  ports: [{number: 443, name: tls}]
  exportTo: ["."]
)", "se.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  REQUIRE(cfg->services.size() == 2);
  CHECK(cfg->services[1].ns == "default");
  REQUIRE(cfg->workloads.size() == 2);
  CHECK(cfg->workloads[0].hostname == "one.example.test");
  CHECK(cfg->workloads[0].services.size() == 1);
  CHECK(cfg->workloads[0].services.count("default/one.example.test") == 1);
  CHECK(cfg->workloads[1].hostname == "two.example.test");
  REQUIRE(cfg->warnings.size() == 1);
  CHECK(cfg->warnings[0] ==
        "se.yaml:9: ServiceEntry default/ext: spec.exportTo: not supported; the entry is "
        "visible everywhere");
}

TEST_CASE("ServiceEntry: resolution NONE is passthrough; bad input is a clear error") {
  auto none = ParseLocalConfig(R"(---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: any, namespace: app}
spec: {hosts: [any.example.test], addresses: [240.240.0.0/16], ports: [{number: 80}]}
)", "se.yaml");
  REQUIRE_MESSAGE(none.ok(), none.status().ToString());
  REQUIRE(none->services.size() == 1);
  CHECK(none->services[0].cidr_vips.size() == 1);
  CHECK(none->services[0].load_balancer->mode == LbMode::kPassthrough);
  CHECK(none->workloads.empty());

  auto host_static = ParseLocalConfig(R"(---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s, namespace: app}
spec:
  hosts: [s.example.test]
  resolution: STATIC
  endpoints: [{address: s.example.test}]
)", "se.yaml");
  REQUIRE(!host_static.ok());
  CHECK(std::string(host_static.status().message()).find(
            "'s.example.test' is not an IP address (hostnames need resolution DNS)") !=
        std::string::npos);
  auto unknown = ParseLocalConfig(R"(---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s}
spec: {hosts: [s.example.test], resolution: DNS, bogus: 1}
)", "se.yaml");
  CHECK(!unknown.ok());
  auto bad_res = ParseLocalConfig(R"(---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s}
spec: {hosts: [s.example.test], resolution: MAGIC}
)", "se.yaml");
  CHECK(!bad_res.ok());
}

TEST_CASE("ztunnel-format workload with a hostname and no workloadIps is hostname-only") {
  auto cfg = ParseLocalConfig(R"(
workloads:
- uid: cluster1//ServiceEntry/app/ext
  name: ext
  namespace: app
  hostname: ext.example.test
  workloadIps: []
  services: {app/ext.example.test: {80: 8080}}
)", "w.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  REQUIRE(cfg->workloads.size() == 1);
  CHECK(cfg->workloads[0].hostname == "ext.example.test");
  CHECK(cfg->workloads[0].workload_ips.empty());
}
