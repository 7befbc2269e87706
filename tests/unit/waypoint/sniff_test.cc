// Protocol detection on ports without a declared protocol, and destination
// resolution of a CONNECT authority.
#include <doctest/doctest.h>

#include <string>

#include "tests/unit/mesh/fixtures.h"
#include "waypoint/proxy/downstream.h"

using namespace ambit;
using namespace ambit::waypoint;
using ambit::mesh::testing::Sock;

namespace {
Sniffed Sniff(std::string_view s) {
  return SniffProtocol(std::as_bytes(std::span(s.data(), s.size())));
}
}  // namespace

TEST_CASE("sniffing: h2 preface, HTTP/1 request lines, anything else") {
  CHECK(Sniff("") == Sniffed::kNeedMore);
  CHECK(Sniff("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == Sniffed::kHttp2);
  CHECK(Sniff("PRI * HTTP/2.0\r\n") == Sniffed::kNeedMore);  // a prefix of the preface
  CHECK(Sniff("GET / HTTP/1.1\r\n") == Sniffed::kHttp1);
  CHECK(Sniff("PROPFIND /x HTTP/1.1\r\n") == Sniffed::kHttp1);
  CHECK(Sniff("GE") == Sniffed::kNeedMore);
  CHECK(Sniff("\x16\x03\x01\x02\x00") == Sniffed::kOther);  // a TLS ClientHello
  CHECK(Sniff("hello\n") == Sniffed::kOther);
  CHECK(Sniff(" GET / HTTP/1.1") == Sniffed::kOther);
  CHECK(Sniff("AVERYLONGMETHODNAMEXX / HTTP/1.1") == Sniffed::kOther);
}

TEST_CASE("ResolveTarget: service VIP, pod IP, unknown, the waypoint itself") {
  using namespace ambit::mesh;
  using namespace ambit::mesh::testing;
  WorkloadStore store;
  Service svc = Svc("demo", "echo", "10.96.0.30", 80, 8080);
  REQUIRE(store.UpsertService(svc).ok());
  Workload backend = Pod("demo", "echo-0", "10.0.0.10");
  Join(backend, svc);
  REQUIRE(store.UpsertWorkload(backend).ok());
  Workload self = Pod("demo", "waypoint", "10.0.0.99");
  REQUIRE(store.UpsertWorkload(self).ok());
  WaypointState st;
  st.snapshot = store.Build();
  st.self = *st.snapshot->FindWorkload(self.uid);

  auto vip = ResolveTarget(st, Sock("10.96.0.30:80"));
  REQUIRE(vip.ok());
  CHECK(vip->service != nullptr);
  CHECK(vip->port == 80);
  CHECK(vip->Describe() == "echo.demo.svc.cluster.local:80");
  CHECK(absl::IsNotFound(ResolveTarget(st, Sock("10.96.0.30:81")).status()));
  auto pod = ResolveTarget(st, Sock("10.0.0.10:8080"));
  REQUIRE(pod.ok());
  CHECK(pod->workload != nullptr);
  CHECK(pod->service == nullptr);
  CHECK(absl::IsNotFound(ResolveTarget(st, Sock("10.1.2.3:80")).status()));
  CHECK(absl::IsInvalidArgument(ResolveTarget(st, Sock("10.0.0.99:15008")).status()));
}
