#include "agent/dns/local_names.h"

#include <doctest/doctest.h>

#include "tests/unit/mesh/fixtures.h"

namespace ambit::dns {
namespace {

using mesh::testing::Ip;
using mesh::testing::Join;
using mesh::testing::Pod;
using mesh::testing::Svc;

std::shared_ptr<const mesh::Snapshot> Mesh() {
  mesh::WorkloadStore store;
  mesh::Service httpbin = Svc("demo", "httpbin", "10.96.0.20", 80, 8080);
  httpbin.vips.push_back({"", Ip("fd00::20"), 128});
  httpbin.vips.push_back({"other-net", Ip("10.200.0.20"), 32});
  REQUIRE(store.UpsertService(httpbin).ok());
  mesh::Service v4only = Svc("demo", "v4only", "10.96.0.21", 80, 80);
  v4only.ip_families = mesh::IpFamilies::kIpv4Only;
  REQUIRE(store.UpsertService(v4only).ok());
  REQUIRE(store.UpsertService(Svc("other", "httpbin", "10.96.1.20", 80, 8080)).ok());
  REQUIRE(store.UpsertService(Svc("ns2", "api", "10.96.2.1", 80, 80)).ok());
  mesh::Service se = Svc("demo", "se", "240.240.0.1", 443, 443);
  se.hostname = "api.external.com";
  REQUIRE(store.UpsertService(se).ok());
  mesh::Service wild = Svc("demo", "wild", "240.240.0.2", 80, 80);
  wild.hostname = "*.wild.example";
  REQUIRE(store.UpsertService(wild).ok());
  mesh::Service novip = Svc("demo", "novip", "", 80, 80);
  novip.hostname = "novip.external.com";
  REQUIRE(store.UpsertService(novip).ok());
  mesh::Service headless = Svc("demo", "headless", "", 80, 80);
  REQUIRE(store.UpsertService(headless).ok());
  mesh::Workload a = Pod("demo", "h-a", "10.44.1.5");
  a.addresses.push_back(Ip("fd00::5"));
  Join(a, headless, {{80, 80}});
  REQUIRE(store.UpsertWorkload(a).ok());
  mesh::Workload b = Pod("demo", "h-b", "10.44.1.6");
  Join(b, headless, {{80, 80}});
  REQUIRE(store.UpsertWorkload(b).ok());
  return store.Build();
}

Query Q(std::string name, RecordType t = RecordType::kA) {
  Query q;
  q.name = std::move(name);
  q.qtype = static_cast<uint16_t>(t);
  q.qclass = kClassIn;
  return q;
}

std::vector<std::string> Texts(const std::optional<LocalAnswer>& a) {
  std::vector<std::string> out;
  if (!a) return {"forward"};
  for (const Record& r : a->records) {
    out.push_back(r.name + " " + (r.type == 5 ? "CNAME " + r.target : r.address.ToString()));
  }
  return out;
}

const DnsClient kDemo{"demo", "", "client", "v1"};
const LocalNamesConfig kConfig;

}  // namespace

TEST_CASE("aliases follow ztunnel's Kubernetes expansion and search-domain stripping") {
  auto names = [](std::string_view n) {
    std::vector<std::string> out;
    for (const auto& a : AliasesFor(n, "ns1", "cluster.local")) out.push_back(a.name + (a.stripped ? "*" : ""));
    return out;
  };
  CHECK(names("name") == std::vector<std::string>{"name", "name.ns1.svc.cluster.local"});
  CHECK(names("name.ns") ==
        std::vector<std::string>{"name.ns", "name.ns.svc.cluster.local", "name.ns.ns1.svc.cluster.local"});
  CHECK(names("name.ns.svc") == std::vector<std::string>{"name.ns.svc", "name.ns.svc.cluster.local",
                                                         "name.ns.svc.svc.cluster.local"});
  CHECK(names("a.b.ns.svc") == std::vector<std::string>{"a.b.ns.svc", "a.b.ns.svc.cluster.local"});
  CHECK(names("name.ns.ns1.svc.cluster.local") ==
        std::vector<std::string>{"name.ns.ns1.svc.cluster.local", "name.ns*", "name.ns.svc.cluster.local*",
                                 "name.ns.ns1*", "name.ns.ns1.svc*"});
  CHECK(WildcardsFor("www.example.com") ==
        std::vector<std::string>{"www.example.com", "*.example.com", "*.com"});
}

TEST_CASE("service names: full, short, namespaced, via a search domain (CNAME)") {
  auto snap = Mesh();
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("httpbin.demo.svc.cluster.local"), kConfig)) ==
        std::vector<std::string>{"httpbin.demo.svc.cluster.local 10.96.0.20"});
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("httpbin"), kConfig)) ==
        std::vector<std::string>{"httpbin 10.96.0.20"});
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("httpbin.other"), kConfig)) ==
        std::vector<std::string>{"httpbin.other 10.96.1.20"});
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("api.ns2.demo.svc.cluster.local"), kConfig)) ==
        std::vector<std::string>{"api.ns2.demo.svc.cluster.local CNAME api.ns2", "api.ns2 10.96.2.1"});
  // The client's namespace decides which `httpbin` a short name means.
  const DnsClient other{"other", "", "", ""};
  CHECK(Texts(AnswerFromMesh(*snap, other, Q("httpbin"), kConfig)) ==
        std::vector<std::string>{"httpbin 10.96.1.20"});
}

TEST_CASE("ServiceEntry hosts, wildcards, and what is forwarded") {
  auto snap = Mesh();
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("api.external.com"), kConfig)) ==
        std::vector<std::string>{"api.external.com 240.240.0.1"});
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("x.y.wild.example"), kConfig)) ==
        std::vector<std::string>{"x.y.wild.example 240.240.0.2"});
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("example.com"), kConfig)) == std::vector<std::string>{"forward"});
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("novip.external.com"), kConfig)) ==
        std::vector<std::string>{"forward"});  // no VIP, not a Kubernetes service
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("httpbin", RecordType::kTxt), kConfig)) ==
        std::vector<std::string>{"forward"});  // only A / AAAA are answered here
  Query ch = Q("httpbin");
  ch.qclass = 3;
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, ch, kConfig)) == std::vector<std::string>{"forward"});
}

TEST_CASE("families, networks and headless services") {
  auto snap = Mesh();
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("httpbin", RecordType::kAaaa), kConfig)) ==
        std::vector<std::string>{"httpbin fd00::20"});
  // A v4-only service has no AAAA: an empty answer, not NXDOMAIN (and not forwarded).
  auto empty = AnswerFromMesh(*snap, kDemo, Q("v4only", RecordType::kAaaa), kConfig);
  REQUIRE(empty.has_value());
  CHECK(empty->records.empty());
  LocalNamesConfig no6;
  no6.ipv6_enabled = false;
  auto off = AnswerFromMesh(*snap, kDemo, Q("httpbin", RecordType::kAaaa), no6);
  REQUIRE(off.has_value());
  CHECK(off->records.empty());
  // VIPs of another network are not callable by this client.
  const DnsClient far{"demo", "other-net", "", ""};
  CHECK(Texts(AnswerFromMesh(*snap, far, Q("httpbin"), kConfig)) ==
        std::vector<std::string>{"httpbin 10.200.0.20"});
  auto headless = Texts(AnswerFromMesh(*snap, kDemo, Q("headless"), kConfig));
  std::sort(headless.begin(), headless.end());
  CHECK(headless == std::vector<std::string>{"headless 10.44.1.5", "headless 10.44.1.6"});
  CHECK(Texts(AnswerFromMesh(*snap, kDemo, Q("headless", RecordType::kAaaa), kConfig)) ==
        std::vector<std::string>{"headless fd00::5"});
}

}  // namespace ambit::dns
