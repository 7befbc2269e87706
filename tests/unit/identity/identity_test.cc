#include "common/identity/identity.h"

#include <doctest/doctest.h>

#include <string>
#include <unordered_set>

namespace ambit::identity {
namespace {

TEST_CASE("Identity parses the canonical SPIFFE form") {
  auto id = Identity::Parse("spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
  REQUIRE(id.ok());
  CHECK(id->trust_domain() == "cluster.local");
  CHECK(id->ns() == "default");
  CHECK(id->service_account() == "bookinfo-productpage");
  CHECK(id->ToString() == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
}

TEST_CASE("Identity rejects malformed forms with a reason") {
  struct Bad {
    const char* uri;
    const char* reason;  // substring of the error
  };
  const Bad cases[] = {
      {"", "must start with spiffe://"},
      {"http://td/ns/a/sa/b", "must start with spiffe://"},
      {"SPIFFE://td/ns/a/sa/b", "must start with spiffe://"},
      {"spiffe://td/ns/a/sa", "too few path segments"},
      {"spiffe://td/ns/a", "too few path segments"},
      {"spiffe://td", "too few path segments"},
      {"spiffe://td/ns/a/sa/b/extra", "too many path segments"},
      {"spiffe://td/ns/a/sa/b/", "too many path segments"},
      {"spiffe://td/namespace/a/sa/b", "path must be /ns/"},
      {"spiffe://td/ns/a/serviceaccount/b", "path must be /ns/"},
      {"spiffe://td/sa/a/ns/b", "path must be /ns/"},
      {"spiffe:///ns/a/sa/b", "empty trust domain"},
      {"spiffe://td/ns//sa/b", "empty namespace"},
      {"spiffe://td/ns/a/sa/", "empty service account"},
      {"spiffe://td/ns/a b/sa/b", "invalid character in namespace"},
      {"spiffe://td:8080/ns/a/sa/b", "invalid character in trust domain"},
      {"spiffe://td/ns/a/sa/b?x=1", "invalid character in service account"},
  };
  for (const Bad& c : cases) {
    CAPTURE(c.uri);
    auto id = Identity::Parse(c.uri);
    REQUIRE_FALSE(id.ok());
    CHECK(id.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(id.status().message()).find(c.reason) != std::string::npos);
  }
}

TEST_CASE("Identity equality and hashing follow the URI") {
  auto a = Identity::Parse("spiffe://td/ns/a/sa/b");
  auto a2 = Identity::Make("td", "a", "b");
  auto c = Identity::Parse("spiffe://td/ns/a/sa/c");
  REQUIRE(a.ok());
  REQUIRE(a2.ok());
  REQUIRE(c.ok());
  CHECK(*a == *a2);
  CHECK_FALSE(*a == *c);
  std::unordered_set<Identity> set{*a, *a2, *c};
  CHECK(set.size() == 2);
  CHECK(set.count(*a2) == 1);
}

}  // namespace
}  // namespace ambit::identity
