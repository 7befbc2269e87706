// Port protocol selection, row by row from istiod's rules
// (pkg/config/kube ConvertProtocol + the ambient index's AppProtocol mapping).
#include "common/mesh/app_protocol.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"

using ambit::mesh::AppProtocol;
using ambit::mesh::AppProtocolName;
using ambit::mesh::IsKnownIstioProtocol;
using ambit::mesh::ProtocolFromKubernetes;

namespace {

struct Row {
  uint16_t port;
  const char* name;
  std::optional<std::string> app_protocol;
  AppProtocol want;
};

}  // namespace

TEST_CASE("port names: the prefix before '-' names the protocol, case-insensitively") {
  const Row rows[] = {
      {80, "http", {}, AppProtocol::kHttp11},
      {80, "http-web", {}, AppProtocol::kHttp11},
      {80, "HTTP-Web", {}, AppProtocol::kHttp11},
      {80, "http2", {}, AppProtocol::kHttp2},
      {80, "http2-api", {}, AppProtocol::kHttp2},
      {9090, "grpc", {}, AppProtocol::kGrpc},
      {9090, "grpc-backend", {}, AppProtocol::kGrpc},
      {9090, "grpc-web", {}, AppProtocol::kUnknown},     // GRPC-Web: no AppProtocol value
      {9090, "grpc-web-ui", {}, AppProtocol::kUnknown},
      {9090, "GRPC-WEBx", {}, AppProtocol::kUnknown},
      {5432, "tcp", {}, AppProtocol::kTcp},
      {5432, "tcp-postgres", {}, AppProtocol::kTcp},
      {443, "tls", {}, AppProtocol::kTls},
      {443, "https", {}, AppProtocol::kTls},
      {443, "https-admin", {}, AppProtocol::kTls},
      {27017, "mongo", {}, AppProtocol::kUnknown},       // Istio's Mongo, even on 27017
      {6379, "redis", {}, AppProtocol::kUnknown},
      {3306, "mysql", {}, AppProtocol::kUnknown},
      {53, "udp-dns", {}, AppProtocol::kUnknown},
      {8080, "http_proxy", {}, AppProtocol::kUnknown},
      {8080, "web", {}, AppProtocol::kUnknown},          // not a protocol name
      {8080, "httpx", {}, AppProtocol::kUnknown},        // a prefix must end at '-'
      {8080, "", {}, AppProtocol::kUnknown},
      {8080, "-http", {}, AppProtocol::kUnknown},
      // Unrecognised names on istiod's well-known ports are TCP.
      {25, "smtp", {}, AppProtocol::kTcp},
      {53, "", {}, AppProtocol::kTcp},
      {3306, "db", {}, AppProtocol::kTcp},
      {27017, "", {}, AppProtocol::kTcp},
  };
  for (const Row& r : rows) {
    CHECK_MESSAGE(ProtocolFromKubernetes(r.port, r.name, nullptr) == r.want,
                  r.port << " name=" << r.name);
  }
}

TEST_CASE("appProtocol wins over the port name; Kubernetes' own values") {
  const Row rows[] = {
      {80, "tcp-raw", "http", AppProtocol::kHttp11},
      {80, "http", "tcp", AppProtocol::kTcp},
      {80, "http", "HTTP2", AppProtocol::kHttp2},
      {80, "", "kubernetes.io/h2c", AppProtocol::kHttp2},
      {80, "tcp", "kubernetes.io/ws", AppProtocol::kHttp11},
      {443, "", "kubernetes.io/wss", AppProtocol::kTls},
      {443, "", "Kubernetes.io/h2c", AppProtocol::kUnknown},  // these match exactly
      {9090, "http", "grpc", AppProtocol::kGrpc},
      {9090, "grpc", "grpc-web", AppProtocol::kUnknown},
      {443, "http", "https", AppProtocol::kTls},
      {443, "http", "tls", AppProtocol::kTls},
      {80, "http", "http-custom", AppProtocol::kHttp11},    // the prefix rule applies too
      {80, "http", "kafka", AppProtocol::kUnknown},         // given but unknown: no fallback
      {80, "http", "", AppProtocol::kUnknown},              // an empty one counts as given
      {3306, "http", "kafka", AppProtocol::kTcp},           // well-known port
  };
  for (const Row& r : rows) {
    CHECK_MESSAGE(ProtocolFromKubernetes(r.port, r.name, &*r.app_protocol) == r.want,
                  r.port << " name=" << r.name << " appProtocol=" << *r.app_protocol);
  }
}

TEST_CASE("known protocol names and the dump's enum names") {
  CHECK(IsKnownIstioProtocol("http"));
  CHECK(IsKnownIstioProtocol("kubernetes.io/ws"));
  CHECK(IsKnownIstioProtocol("mongo"));      // known to Istio, UNKNOWN in WDS
  CHECK(IsKnownIstioProtocol("grpc-web"));
  CHECK_FALSE(IsKnownIstioProtocol("kafka"));
  CHECK_FALSE(IsKnownIstioProtocol(""));
  CHECK(AppProtocolName(AppProtocol::kUnknown) == "UNKNOWN");
  CHECK(AppProtocolName(AppProtocol::kHttp11) == "HTTP11");
  CHECK(AppProtocolName(AppProtocol::kHttp2) == "HTTP2");
  CHECK(AppProtocolName(AppProtocol::kGrpc) == "GRPC");
  CHECK(AppProtocolName(AppProtocol::kTcp) == "TCP");
  CHECK(AppProtocolName(AppProtocol::kTls) == "TLS");
  CHECK(static_cast<int>(AppProtocol::kTls) == 5);  // workload.proto's numbering
}

TEST_CASE("standalone YAML ports → Service::port_protocols, as istiod would send them") {
  auto cfg = ambit::config::ParseLocalConfig(R"(services:
- name: s
  namespace: n
  hostname: s.n.svc.cluster.local
  vips: ["/10.96.0.1"]
  ports:
  - {port: 80, name: http-web}
  - {port: 81, name: tcp-raw, appProtocol: http}
  - {port: 82, appProtocol: kubernetes.io/h2c}
  - {port: 9090, name: grpc}
  - {port: 443, name: https}
  - {port: 8443, appProtocol: kafka}
  - 3306
  - 8080
)", "c.yaml");
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().ToString());
  ambit::mesh::WorkloadStore store;
  std::vector<std::string> findings;
  REQUIRE(ambit::mesh::ApplyLocalConfig(*cfg, &store, &findings).ok());
  auto snap = store.Build();
  const ambit::mesh::Service* s = snap->FindServiceByKey("n/s.n.svc.cluster.local");
  REQUIRE(s != nullptr);
  CHECK(s->PortProtocol(80) == AppProtocol::kHttp11);
  CHECK(s->PortProtocol(81) == AppProtocol::kHttp11);
  CHECK(s->PortProtocol(82) == AppProtocol::kHttp2);
  CHECK(s->PortProtocol(9090) == AppProtocol::kGrpc);
  CHECK(s->PortProtocol(443) == AppProtocol::kTls);
  CHECK(s->PortProtocol(8443) == AppProtocol::kUnknown);
  CHECK(s->PortProtocol(3306) == AppProtocol::kTcp);  // well-known port, no name
  CHECK(s->PortProtocol(8080) == AppProtocol::kUnknown);
  CHECK(s->port_names.at(80) == "http-web");
  CHECK_FALSE(s->port_names.contains(8080));
  REQUIRE(findings.size() == 1);
  CHECK(findings[0] == "service n/s (line 2): port 8443: appProtocol 'kafka' is not a protocol "
                       "Istio knows; the port's protocol is UNKNOWN (sniffed)");
}
