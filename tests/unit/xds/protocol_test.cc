// Node id/metadata, initial request, ACK/NACK builders.
#include "common/xds/protocol.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/xds/env.h"
#include "common/xds/grpc_transport.h"
#include "common/xds/node.h"

namespace ambit::xds {
namespace {

TEST_CASE("node: id and metadata from the environment") {
  NodeInfo info = NodeInfoFromEnv({{"INSTANCE_IP", "10.0.0.5"},
                                   {"POD_NAME", "ztunnel-abc"},
                                   {"POD_NAMESPACE", "istio-system"},
                                   {"NODE_NAME", "node-1"},
                                   {"CLUSTER_ID", "ignored"},
                                   {"ISTIO_META_CLUSTER_ID", "c1"},
                                   {"ISTIO_META_DNS_CAPTURE", "true"},
                                   {"ISTIO_METAJSON_LABELS", "{\"app\":\"x\"}"},
                                   {"UNRELATED", "1"}});
  CHECK(NodeId(info) == "ztunnel~10.0.0.5~ztunnel-abc.istio-system~istio-system.svc.cluster.local");
  StatusOr<::envoy::config::core::v3::Node> node = BuildNode(info);
  REQUIRE(node.ok());
  const auto& f = node->metadata().fields();
  CHECK(f.at("NAME").string_value() == "ztunnel-abc");
  CHECK(f.at("NAMESPACE").string_value() == "istio-system");
  CHECK(f.at("INSTANCE_IPS").string_value() == "10.0.0.5");
  CHECK(f.at("NODE_NAME").string_value() == "node-1");
  CHECK(f.at("CLUSTER_ID").string_value() == "c1");
  CHECK(f.at("DNS_CAPTURE").string_value() == "true");
  CHECK(f.at("LABELS").struct_value().fields().at("app").string_value() == "x");
  CHECK(f.count("UNRELATED") == 0);
}

TEST_CASE("node: defaults and bad JSON") {
  NodeInfo info = NodeInfoFromEnv({{"POD_NAME", "p"}, {"POD_NAMESPACE", "ns"}});
  CHECK(NodeId(info) == "ztunnel~1.1.1.1~p.ns~ns.svc.cluster.local");
  CHECK(info.cluster_id == "Kubernetes");
  info.metadata_json["X"] = "{not json";
  StatusOr<::envoy::config::core::v3::Node> node = BuildNode(info);
  REQUIRE_FALSE(node.ok());
  CHECK(std::string(node.status().message()).starts_with("ISTIO_METAJSON_X is not valid JSON"));
}

TEST_CASE("protocol: initial request, ACK and NACK") {
  ::envoy::config::core::v3::Node node;
  node.set_id("ztunnel~1.1.1.1~p.ns~ns.svc.cluster.local");
  DeltaRequest init = InitialRequest(kAddressType, node, {{"a", "1"}, {"b", "2"}});
  CHECK(init.type_url() == kAddressType);
  CHECK(init.node().id() == node.id());
  CHECK(init.resource_names_subscribe_size() == 0);  // wildcard
  CHECK(init.initial_resource_versions().at("a") == "1");
  CHECK(init.initial_resource_versions().at("b") == "2");
  CHECK(init.response_nonce().empty());

  DeltaRequest ack = AckRequest(kAddressType, "n-7", {});
  CHECK(ack.response_nonce() == "n-7");
  CHECK_FALSE(ack.has_error_detail());
  CHECK_FALSE(ack.has_node());

  DeltaRequest nack = AckRequest(kAuthorizationType, "n-8", {{"ns/p", "bad"}, {"ns/q", "worse"}});
  CHECK(nack.response_nonce() == "n-8");
  REQUIRE(nack.has_error_detail());
  CHECK(nack.error_detail().code() == 3);
  CHECK(nack.error_detail().message() == "ns/p: bad; ns/q: worse");
}

TEST_CASE("token: literal, file (trimmed), empty file") {
  CHECK(*ResolveXdsToken("") == "");
  CHECK(*ResolveXdsToken("literal-token") == "literal-token");
  char path[] = "/tmp/ambit-xds-token-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, "jwt-abc\n", 8) == 8);
  close(fd);
  CHECK(*ResolveXdsToken(path) == "jwt-abc");
  REQUIRE(truncate(path, 0) == 0);
  StatusOr<std::string> empty = ResolveXdsToken(path);
  REQUIRE_FALSE(empty.ok());
  CHECK(std::string(empty.status().message()).find("is empty") != std::string::npos);
  unlink(path);
}

TEST_CASE("grpc transport: option validation") {
  GrpcTransportOptions o;
  CHECK(std::string(GrpcXdsTransport::Create(o).status().message())
            .starts_with("XDS_ADDRESS is empty"));
  o.address = "http://localhost:15012";
  CHECK(std::string(GrpcXdsTransport::Create(o).status().message()).find("plaintext http://") !=
        std::string::npos);
  o.address = "https://localhost:15012";
  o.root_ca = "/nonexistent/root-cert.pem";
  StatusOr<std::unique_ptr<GrpcXdsTransport>> t = GrpcXdsTransport::Create(o);
  REQUIRE_FALSE(t.ok());
  CHECK(std::string(t.status().message()).find("XDS_ROOT_CA") != std::string::npos);
}

}  // namespace
}  // namespace ambit::xds

namespace ambit::xds {
namespace {

TEST_CASE("env: defaults, overrides, disabled, on-demand recorded") {
  auto local = XdsConfigFromEnv({});
  REQUIRE(local.ok());
  CHECK(local->enabled);
  CHECK(local->grpc.address == "https://localhost:15012");
  CHECK(local->grpc.root_ca == "./var/run/secrets/istio/root-cert.pem");
  // No AUTH_TOKEN and no projected token file here: no authorization header
  // (ztunnel's AuthSource::None), not the default path sent as a token.
  CHECK(local->grpc.auth_token == "");
  CHECK_FALSE(local->on_demand);
  CHECK(local->grpc.cluster_id == "Kubernetes");

  auto k8s = XdsConfigFromEnv({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                               {"XDS_ROOT_CA", "SYSTEM"},
                               {"ALT_XDS_HOSTNAME", "istiod.example"},
                               {"AUTH_TOKEN", "tok"},
                               {"CLUSTER_ID", "c9"},
                               {"XDS_HEADER_X_Tenant", "t1"},
                               {"POD_NAME", "zt"},
                               {"POD_NAMESPACE", "istio-system"}});
  REQUIRE(k8s.ok());
  CHECK(k8s->grpc.address == "https://istiod.istio-system.svc:15012");
  CHECK(k8s->grpc.root_ca == "SYSTEM");
  CHECK(k8s->grpc.alt_hostname == "istiod.example");
  CHECK(k8s->grpc.auth_token == "tok");
  CHECK(k8s->grpc.cluster_id == "c9");
  REQUIRE(k8s->grpc.extra_headers.size() == 1);
  CHECK(k8s->grpc.extra_headers[0].first == "X_Tenant");
  CHECK(k8s->grpc.extra_headers[0].second == "t1");
  CHECK(NodeId(k8s->client.node) ==
        "ztunnel~1.1.1.1~zt.istio-system~istio-system.svc.cluster.local");

  auto explicit_addr = XdsConfigFromEnv({{"XDS_ADDRESS", "istiod:15012"}});
  CHECK(explicit_addr->grpc.address == "istiod:15012");

  auto off = XdsConfigFromEnv({{"XDS_ADDRESS", ""}});
  REQUIRE(off.ok());
  CHECK_FALSE(off->enabled);

  auto od = XdsConfigFromEnv({{"XDS_ON_DEMAND", "true"}});
  REQUIRE(od.ok());
  CHECK(od->on_demand);
  auto bad = XdsConfigFromEnv({{"XDS_ON_DEMAND", "yes"}});
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()).find("expected true or false") != std::string::npos);
}

TEST_CASE("env: AUTH_TOKEN as ztunnel resolves it") {
  // Set: passed through (a file when it exists, else the token itself).
  CHECK(AuthTokenFromEnv({{"AUTH_TOKEN", "/nonexistent/token"}}) == "/nonexistent/token");
  CHECK(AuthTokenFromEnv({{"AUTH_TOKEN", "static-jwt"}}) == "static-jwt");
  // Unset: the projected token file only if it exists (relative to the cwd,
  // as the chart mounts it under the container's working directory).
  char dir[] = "/tmp/ambit-token-cwd-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::filesystem::path old = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  CHECK(AuthTokenFromEnv({}) == "");
  std::filesystem::create_directories("var/run/secrets/tokens");
  { std::ofstream("var/run/secrets/tokens/istio-token") << "jwt\n"; }
  CHECK(AuthTokenFromEnv({}) == kDefaultAuthTokenPath);
  CHECK(*ResolveXdsToken(AuthTokenFromEnv({})) == "jwt");
  std::filesystem::current_path(old);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ambit::xds
