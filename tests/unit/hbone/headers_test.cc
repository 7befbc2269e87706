#include <doctest/doctest.h>

#include <set>
#include <string>

#include "common/hbone/headers.h"

namespace ambit::hbone {
namespace {

TEST_CASE("baggage: full set formats in a fixed order and round-trips") {
  Baggage b{.cluster_id = "Kubernetes",
            .namespace_name = "default",
            .workload_type = "deployment",
            .workload_name = "productpage-v1",
            .service_name = "productpage",
            .service_version = "v1",
            .region = "us-east1",
            .zone = "us-east1-b"};
  std::string v = FormatBaggage(b);
  CHECK(v ==
        "k8s.cluster.name=Kubernetes,k8s.namespace.name=default,"
        "k8s.deployment.name=productpage-v1,service.name=productpage,service.version=v1,"
        "cloud.region=us-east1,cloud.availability_zone=us-east1-b");
  CHECK(ParseBaggage(v) == b);
}

TEST_CASE("baggage: empty fields are omitted") {
  Baggage b{.namespace_name = "ns", .workload_type = "job", .service_name = "s"};
  CHECK(FormatBaggage(b) == "k8s.namespace.name=ns,service.name=s");
  b.workload_name = "batch-1";
  CHECK(FormatBaggage(b) == "k8s.namespace.name=ns,k8s.job.name=batch-1,service.name=s");
  CHECK(FormatBaggage(Baggage{}).empty());
  CHECK(Baggage{}.empty());
}

TEST_CASE("baggage: parsing is lenient with spaces, properties and unknown keys") {
  Baggage b = ParseBaggage(
      " k8s.namespace.name = ns1 ;prop=1, junk, =x, k8s.cronjob.name=nightly,"
      "k8s.replicaset.name=ignored,other=1,service.version=,cloud.region=r");
  CHECK(b.namespace_name == "ns1");
  CHECK(b.workload_type == "cronjob");
  CHECK(b.workload_name == "nightly");
  CHECK(b.service_version.empty());
  CHECK(b.region == "r");
  CHECK(ParseBaggage("") == Baggage{});
  CHECK(ParseBaggage(",,,;;==") == Baggage{});
}

TEST_CASE("forwarded: format") {
  CHECK(*FormatForwarded("10.0.0.5", 34567, "") == "for=\"10.0.0.5:34567\"");
  CHECK(*FormatForwarded("10.0.0.5", 1, "reviews.default.svc.cluster.local") ==
        "for=\"10.0.0.5:1\";host=reviews.default.svc.cluster.local");
  CHECK(*FormatForwarded("fd00::5", 80, "") == "for=\"[fd00::5]:80\"");
  CHECK_FALSE(FormatForwarded("not-an-ip", 80, "").ok());
  CHECK_FALSE(FormatForwarded("10.0.0.5", 80, "bad host").ok());
}

TEST_CASE("forwarded: parse table") {
  struct Case {
    const char* in;
    std::optional<std::string> for_value;
    std::optional<std::string> host;
  };
  const Case ok[] = {
      {"for=\"10.0.0.5:34567\"", "10.0.0.5:34567", std::nullopt},
      {"for=\"[fd00::5]:80\";host=svc.ns.svc.cluster.local", "[fd00::5]:80",
       "svc.ns.svc.cluster.local"},
      {"host=a.b;for=192.0.2.60", "192.0.2.60", "a.b"},
      {"For=\"1.2.3.4:5\" ; Host=\"x.y\"", "1.2.3.4:5", "x.y"},
      {"for=1.1.1.1, for=2.2.2.2;host=second", "1.1.1.1", "second"},
      {"proto=https;by=203.0.113.43", std::nullopt, std::nullopt},
      {"for=\"esc\\\"aped\"", "esc\"aped", std::nullopt},
      {"", std::nullopt, std::nullopt},
  };
  for (const Case& c : ok) {
    CAPTURE(c.in);
    auto f = ParseForwarded(c.in);
    REQUIRE(f.ok());
    CHECK(f->for_value == c.for_value);
    CHECK(f->host == c.host);
  }
  for (const char* bad : {"for", "=x", "for=\"unterminated", "for=a\"b", "for=", "for=\"a\"b\""}) {
    CAPTURE(bad);
    CHECK(ParseForwarded(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK_FALSE(ParseForwarded(std::string(5000, 'a')).ok());
}

TEST_CASE("traceparent: generated values are valid and random") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string t = GenerateTraceparent();
    CHECK(t.size() == 55);
    CHECK(t.starts_with("00-"));
    CHECK(t.ends_with("-00"));
    CHECK(IsValidTraceparent(t));
    seen.insert(t);
  }
  CHECK(seen.size() == 100);
}

TEST_CASE("traceparent: the 55-char rule and field checks") {
  const std::string good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  CHECK(good.size() == 55);
  CHECK(IsValidTraceparent(good));
  CHECK(IsValidTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
  const char* bad[] = {
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",       // 56
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",         // 54
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // upper
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero parent
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // version ff
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // separator
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",        // non-hex
  };
  for (const char* b : bad) {
    CAPTURE(b);
    CHECK_FALSE(IsValidTraceparent(b));
  }
}

}  // namespace
}  // namespace ambit::hbone
