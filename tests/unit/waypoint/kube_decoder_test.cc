// waypoint/kube: the list / watch-event decoder, the line splitter, the API
// server URL parser, objects → config documents, and the status patches of
// cluster mode (waypoint/app/cluster_status.h).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "common/config/loader.h"
#include "common/mesh/from_config.h"
#include "waypoint/app/cluster_status.h"
#include "waypoint/route/endpoint_findings.h"
#include "waypoint/kube/api_client.h"
#include "waypoint/kube/to_config.h"
#include "waypoint/kube/watch_decoder.h"
#include "waypoint/kube/watcher.h"

namespace ambit::waypoint::kube {
namespace {

using nlohmann::json;

const KindRef kRoute{"gateway.networking.k8s.io/v1", "HTTPRoute"};

std::string Route(const std::string& name, const std::string& rv, const std::string& extra = "") {
  return R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute","metadata":{"name":")" +
         name + R"(","namespace":"demo","resourceVersion":")" + rv +
         R"(","generation":3,"uid":"u-)" + name + R"("},"spec":{)" + extra + "}}";
}

TEST_CASE("watch events: every type decodes, metadata pulled out") {
  for (auto [type, want] : {std::pair{"ADDED", EventType::kAdded},
                            std::pair{"MODIFIED", EventType::kModified},
                            std::pair{"DELETED", EventType::kDeleted}}) {
    DecodedEvent d = DecodeWatchEvent(
        std::string(R"({"type":")") + type + R"(","object":)" + Route("r1", "42") + "}", kRoute);
    REQUIRE(d.event);
    CHECK(d.event->type == want);
    CHECK(d.event->object.name == "r1");
    CHECK(d.event->object.ns == "demo");
    CHECK(d.event->object.resource_version == "42");
    CHECK(d.event->object.generation == 3);
    CHECK(d.event->object.uid == "u-r1");
    CHECK(d.event->object.Key() == "demo/r1");
  }
  DecodedEvent b = DecodeWatchEvent(
      R"({"type":"BOOKMARK","object":{"kind":"HTTPRoute","metadata":{"resourceVersion":"77"}}})",
      kRoute);
  REQUIRE(b.event);
  CHECK(b.event->type == EventType::kBookmark);
  CHECK(b.event->object.resource_version == "77");
  DecodedEvent e = DecodeWatchEvent(
      R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",)"
      R"x("message":"too old resource version: 5 (90)","reason":"Expired","code":410}})x",
      kRoute);
  REQUIRE(e.event);
  CHECK(e.event->type == EventType::kError);
  CHECK(e.event->code == 410);
  CHECK(e.event->reason == "Expired");
  CHECK(e.event->message.find("too old") != std::string::npos);
}

TEST_CASE("watch events: malformed input is a typed error, never a crash") {
  auto reason = [](std::string_view line) {
    DecodedEvent d = DecodeWatchEvent(line, kRoute);
    CHECK(!d.event);
    CHECK(!d.error.message.empty());
    return d.error.reason;
  };
  CHECK(reason("{not json") == DecodeReason::kJson);
  CHECK(reason("") == DecodeReason::kJson);
  CHECK(reason("[1,2]") == DecodeReason::kShape);
  CHECK(reason(R"({"type":"ADDED"})") == DecodeReason::kShape);
  CHECK(reason(R"({"type":7,"object":{}})") == DecodeReason::kShape);
  CHECK(reason(R"({"type":"SYNC","object":{}})") == DecodeReason::kUnknownType);
  CHECK(reason(R"({"type":"ADDED","object":{"kind":"HTTPRoute"}})") == DecodeReason::kShape);
  CHECK(reason(R"({"type":"ADDED","object":{"kind":"HTTPRoute","metadata":{}}})") ==
        DecodeReason::kShape);
  CHECK(reason(R"({"type":"ADDED","object":{"metadata":{"name":"x"}}})") == DecodeReason::kShape);
  CHECK(reason(R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"x"}}})") ==
        DecodeReason::kWrongKind);
  CHECK(reason(R"({"type":"BOOKMARK","object":{"metadata":{}}})") == DecodeReason::kShape);
  CHECK(reason(std::string(5000, '[')) == DecodeReason::kTooLarge);
  CHECK(reason(std::string(kMaxEventBytes + 1, ' ')) == DecodeReason::kTooLarge);
  CHECK(DecodeReasonName(DecodeReason::kWrongKind) == "wrong_kind");
}

TEST_CASE("lists: resourceVersion, continue, items without kind get the watched kind") {
  DecodedList d = DecodeList(
      R"({"kind":"HTTPRouteList","apiVersion":"gateway.networking.k8s.io/v1",)"
      R"("metadata":{"resourceVersion":"100","continue":"tok"},)"
      R"("items":[{"metadata":{"name":"a","namespace":"demo","resourceVersion":"9"},"spec":{}},)" +
          Route("b", "10") + "]}",
      kRoute);
  REQUIRE(d.list);
  CHECK(d.list->resource_version == "100");
  CHECK(d.list->continue_token == "tok");
  REQUIRE(d.list->items.size() == 2);
  CHECK(d.list->items[0].body["kind"] == "HTTPRoute");
  CHECK(d.list->items[0].body["apiVersion"] == "gateway.networking.k8s.io/v1");
  CHECK(d.list->items[1].name == "b");
  DecodedList empty = DecodeList(R"({"metadata":{"resourceVersion":"5"},"items":null})", kRoute);
  REQUIRE(empty.list);
  CHECK(empty.list->items.empty());
  CHECK(DecodeList(R"({"metadata":{},"items":[]})", kRoute).error.reason == DecodeReason::kShape);
  CHECK(DecodeList(R"({"items":[]})", kRoute).error.reason == DecodeReason::kShape);
  DecodedList bad = DecodeList(
      R"({"metadata":{"resourceVersion":"5"},"items":[{"kind":"Pod","metadata":{"name":"p"}}]})",
      kRoute);
  CHECK(bad.error.reason == DecodeReason::kWrongKind);
  CHECK(bad.error.message.find("items[0]") != std::string::npos);
  CHECK(DecodeList("nope", kRoute).error.reason == DecodeReason::kJson);
}

TEST_CASE("status bodies") {
  WatchEvent st = DecodeStatus(
      R"({"kind":"Status","code":403,"reason":"Forbidden","message":"httproutes is forbidden"})");
  CHECK(st.code == 403);
  CHECK(st.reason == "Forbidden");
  WatchEvent raw = DecodeStatus("<html>bad gateway</html>");
  CHECK(raw.code == 0);
  CHECK(raw.message == "<html>bad gateway</html>");
}

TEST_CASE("line splitter: events across chunk boundaries, CRLF, blank lines, size bound") {
  LineSplitter s;
  CHECK(s.Feed("{\"a\":1}\n{\"b\""));
  CHECK(s.Next() == std::optional<std::string>("{\"a\":1}"));
  CHECK(!s.Next());
  CHECK(s.Feed(":2}\r\n\n\n{\"c\":3}\n"));
  CHECK(s.Next() == std::optional<std::string>("{\"b\":2}"));
  CHECK(s.Next() == std::optional<std::string>("{\"c\":3}"));
  CHECK(!s.Next());
  CHECK(s.pending() == 0);
  LineSplitter big;
  CHECK(!big.Feed(std::string(kMaxEventBytes + 1, 'x')));
}

TEST_CASE("API server URLs") {
  auto a = ParseApiServerUrl("https://10.96.0.1:443");
  REQUIRE(a.ok());
  CHECK(a->host == "10.96.0.1");
  CHECK(a->port == 443);
  CHECK(a->tls);
  auto b = ParseApiServerUrl("http://127.0.0.1:8080/");
  REQUIRE(b.ok());
  CHECK(!b->tls);
  CHECK(b->port == 8080);
  auto c = ParseApiServerUrl("[fd00::1]:6443");
  REQUIRE(c.ok());
  CHECK(c->host == "fd00::1");
  CHECK(c->port == 6443);
  CHECK(c->ToString() == "https://[fd00::1]:6443");
  CHECK(ParseApiServerUrl("kubernetes.default.svc")->port == 443);
  CHECK(!ParseApiServerUrl("https://host:99999").ok());
  CHECK(!ParseApiServerUrl("https://").ok());
}

TEST_CASE("kinds: paths") {
  const KindInfo* r = FindKind("HTTPRoute");
  REQUIRE(r != nullptr);
  CHECK(r->CollectionPath() == "/apis/gateway.networking.k8s.io/v1/httproutes");
  CHECK(r->ObjectPath("demo", "r 1") ==
        "/apis/gateway.networking.k8s.io/v1/namespaces/demo/httproutes/r%201");
  CHECK(FindKind("VirtualService")->ApiVersion() == "networking.istio.io/v1");
  CHECK(FindKind("Pod") == nullptr);
}

TEST_CASE("objects become config documents; a bad object is skipped and reported") {
  std::vector<KubeObject> objs;
  for (const std::string& text :
       {Route("r1", "1", R"("parentRefs":[{"kind":"Service","group":"","name":"echo"}])"),
        std::string(R"({"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway",)"
                    R"("metadata":{"name":"waypoint","namespace":"demo","resourceVersion":"2"},)"
                    R"("spec":{"gatewayClassName":"istio-waypoint","listeners":[{"name":"mesh",)"
                    R"("port":15008,"protocol":"HBONE"}]},"status":{"conditions":[]}})")}) {
    DecodedEvent d = DecodeWatchEvent(R"({"type":"ADDED","object":)" + text + "}",
                                      {"", json::parse(text)["kind"].get<std::string>()});
    REQUIRE(d.event);
    objs.push_back(d.event->object);
  }
  ObjectConverter conv;
  std::vector<std::string> errors;
  config::LocalConfig cfg = conv.Convert(objs, &errors);
  CHECK(errors.empty());
  REQUIRE(cfg.resources.size() == 2);
  CHECK(cfg.resources[0].kind == "HTTPRoute");
  CHECK(cfg.resources[0].file == "kube:HTTPRoute/demo/r1");
  CHECK(!cfg.resources[1].node["status"]);  // status is not config
  REQUIRE(cfg.gateways.size() == 1);
  CHECK(cfg.gateways[0].class_name == "istio-waypoint");
  // The cache serves an unchanged resourceVersion; a new one is parsed again.
  objs[0].body["metadata"]["resourceVersion"] = "5";
  objs[0].resource_version = "5";
  objs[0].body["spec"] = "not an object";
  config::LocalConfig again = conv.Convert(objs, &errors);
  CHECK(again.resources.size() + errors.size() >= 2);
}

}  // namespace
}  // namespace ambit::waypoint::kube

namespace ambit::waypoint {
namespace {

using nlohmann::json;

constexpr std::string_view kWorld = R"(workloads:
- {uid: c//Pod/demo/waypoint, name: waypoint, namespace: demo, workloadIps: [10.0.0.9],
   serviceAccount: waypoint, trustDomain: cluster.local,
   services: {"demo/waypoint.demo.svc.cluster.local": {15008: 15008}}}
- {uid: c//Pod/demo/echo, name: echo, namespace: demo, workloadIps: [10.0.0.1],
   services: {"demo/echo.demo.svc.cluster.local": {80: 8080}}}
services:
- {name: waypoint, namespace: demo, hostname: waypoint.demo.svc.cluster.local, vips: [/10.96.0.99],
   ports: {15008: 15008}}
- {name: echo, namespace: demo, hostname: echo.demo.svc.cluster.local, vips: [/10.96.0.10],
   ports: {80: 8080},
   waypoint: {destination: {namespace: demo, hostname: waypoint.demo.svc.cluster.local}}}
- {name: other, namespace: demo, hostname: other.demo.svc.cluster.local, vips: [/10.96.0.11],
   ports: {80: 8080}}
)";

kube::KubeObject Obj(const std::string& text) {
  json j = json::parse(text);
  kube::KubeObject o;
  o.name = j["metadata"]["name"];
  o.ns = j["metadata"]["namespace"];
  o.generation = j["metadata"].value("generation", 0);
  o.body = j;
  return o;
}

TEST_CASE("status patches: Gateway programmed, bound routes get parents, others untouched") {
  auto cfg = config::ParseLocalConfig(kWorld, "world.yaml");
  REQUIRE(cfg.ok());
  mesh::WorkloadStore store;
  REQUIRE(mesh::ApplyLocalConfig(*cfg, &store).ok());
  auto snap = store.Build();
  const mesh::Workload* self = snap->FindWorkload("c//Pod/demo/waypoint");
  REQUIRE(self != nullptr);
  std::vector<kube::KubeObject> objs = {
      Obj(R"({"kind":"Gateway","metadata":{"name":"waypoint","namespace":"demo","generation":2},
              "spec":{"gatewayClassName":"istio-waypoint"}})"),
      Obj(R"({"kind":"HTTPRoute","metadata":{"name":"svc","namespace":"demo","generation":4},
              "spec":{"parentRefs":[{"group":"","kind":"Service","name":"echo"}],
                      "rules":[{"backendRefs":[{"name":"echo","port":80}]}]},
              "status":{"parents":[{"controllerName":"example.com/other","parentRef":{"name":"x"}}]}})"),
      Obj(R"({"kind":"HTTPRoute","metadata":{"name":"missing","namespace":"demo","generation":1},
              "spec":{"parentRefs":[{"name":"waypoint"}],
                      "rules":[{"backendRefs":[{"name":"nope","port":80}]}]}})"),
      Obj(R"({"kind":"HTTPRoute","metadata":{"name":"elsewhere","namespace":"demo"},
              "spec":{"parentRefs":[{"group":"","kind":"Service","name":"other"}]}})"),
  };
  std::vector<route::Finding> findings;
  StatusInputs in;
  in.objects = &objs;
  in.snapshot = snap.get();
  in.self = self;
  in.gateway_name = "waypoint";
  in.gateway_namespace = "demo";
  in.findings = &findings;
  in.now = "2026-01-01T00:00:00Z";
  std::vector<StatusPatch> patches = ComputeStatusPatches(in);
  REQUIRE(patches.size() == 3);  // "elsewhere" binds to no waypoint of ours
  CHECK(patches[0].kind == "Gateway");
  CHECK(patches[0].path == "/apis/gateway.networking.k8s.io/v1/namespaces/demo/gateways/waypoint");
  json gw = json::parse(patches[0].body);
  CHECK(gw["status"]["conditions"][0]["type"] == "Accepted");
  CHECK(gw["status"]["conditions"][1]["type"] == "Programmed");
  CHECK(gw["status"]["conditions"][1]["status"] == "True");
  CHECK(gw["status"]["conditions"][1]["observedGeneration"] == 2);
  // The addresses istiod reads to use the Gateway as a waypoint.
  CHECK(gw["status"]["addresses"] ==
        json::parse(R"([{"type":"IPAddress","value":"10.96.0.99"},
                        {"type":"Hostname","value":"waypoint.demo.svc.cluster.local"}])"));
  json svc = json::parse(patches[1].body);
  REQUIRE(svc["status"]["parents"].size() == 2);  // the other controller's entry is kept
  CHECK(svc["status"]["parents"][0]["controllerName"] == "example.com/other");
  CHECK(svc["status"]["parents"][1]["controllerName"] == kIstioMeshController);
  CHECK(svc["status"]["parents"][1]["conditions"][1]["status"] == "True");
  json missing = json::parse(patches[2].body);
  CHECK(missing["status"]["parents"][0]["conditions"][0]["status"] == "True");
  CHECK(missing["status"]["parents"][0]["conditions"][1]["status"] == "False");
  CHECK(missing["status"]["parents"][0]["conditions"][1]["reason"] == "BackendNotFound");

  // A rejected change: Programmed False; an invalid finding: Accepted False.
  findings.push_back({"kube:HTTPRoute/demo/svc:1", "HTTPRoute", "demo/svc", "bad", true});
  in.applied = absl::InvalidArgumentError("1 invalid value");
  std::vector<StatusPatch> bad = ComputeStatusPatches(in);
  CHECK(json::parse(bad[0].body)["status"]["conditions"][1]["status"] == "False");
  CHECK(json::parse(bad[1].body)["status"]["parents"][1]["conditions"][0]["reason"] ==
        "UnsupportedValue");

  // Unchanged statuses keep their lastTransitionTime: identical patches.
  in.applied = absl::OkStatus();
  findings.clear();
  objs[0].body["status"] = gw["status"];
  in.now = "2026-06-01T00:00:00Z";
  std::vector<StatusPatch> later = ComputeStatusPatches(in);
  CHECK(later[0].body == patches[0].body);
}


// Not about Kubernetes, but the same little world: endpoints the waypoint
// cannot reach are findings, for the services it serves only.
TEST_CASE("endpoint findings: hostname-only and other-network endpoints are reported") {
  std::string world(kWorld);
  world.replace(world.find("services:\n"), 10,
                "- {uid: c//ServiceEntry/demo/ext, name: ext, namespace: demo, hostname: ext.example.com,\n"
                "   workloadIps: [], services: {\"demo/echo.demo.svc.cluster.local\": {80: 8080}}}\n"
                "- {uid: c//Pod/demo/far, name: far, namespace: demo, workloadIps: [10.9.0.1], network: west,\n"
                "   services: {\"demo/echo.demo.svc.cluster.local\": {80: 8080},\n"
                "              \"demo/other.demo.svc.cluster.local\": {80: 8080}}}\n"
                "services:\n");
  auto cfg = config::ParseLocalConfig(world, "world.yaml");
  REQUIRE(cfg.ok());
  mesh::WorkloadStore store;
  REQUIRE(mesh::ApplyLocalConfig(*cfg, &store).ok());
  auto snap = store.Build();
  const mesh::Workload* self = snap->FindWorkload("c//Pod/demo/waypoint");
  REQUIRE(self != nullptr);
  auto f = route::UnreachableEndpointFindings(*snap, *self);
  REQUIRE(f.size() == 2);  // "other" does not use this waypoint: not reported
  std::string all = f[0].message + " | " + f[1].message;
  CHECK(all.find("c//ServiceEntry/demo/ext has only a hostname (ext.example.com)") != std::string::npos);
  CHECK(all.find("c//Pod/demo/far is on network 'west'") != std::string::npos);
  CHECK(f[0].resource == "demo/echo.demo.svc.cluster.local");
  CHECK_FALSE(f[0].invalid);
}

}  // namespace
}  // namespace ambit::waypoint
