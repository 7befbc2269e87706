// Random and mutated inputs into every HBONE header parser: bounded, never
// crashes, and anything accepted is well-formed.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "common/hbone/connect_codec.h"

namespace ambit::hbone {
namespace {

std::string RandomText(std::mt19937& rng, std::string_view alphabet, size_t max_len) {
  std::string s(rng() % (max_len + 1), ' ');
  for (char& c : s) c = alphabet[rng() % alphabet.size()];
  return s;
}

TEST_CASE("parsers survive random input; accepted authorities round-trip") {
  std::mt19937 rng(4242);
  static constexpr char kAlphabet[] = "0123456789abcdefABCDEF.:[]-_%/\"=;, \t\\x\0\xff";
  const std::string_view alphabet(kAlphabet, sizeof(kAlphabet) - 1);  // keeps the NUL
  int accepted = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string s = RandomText(rng, alphabet, 48);
    auto a = ParseAuthority(s);
    if (a.ok()) {
      ++accepted;
      auto again = ParseAuthority(a->ToString());
      REQUIRE(again.ok());
      CHECK(*again == *a);
      CHECK(a->port != 0);
    } else {
      CHECK(a.status().code() == absl::StatusCode::kInvalidArgument);
    }
    (void)ParseForwarded(s);
    Baggage b = ParseBaggage(s);
    CHECK(ParseBaggage(FormatBaggage(b)) == b);
    if (IsValidTraceparent(s)) CHECK(s.size() == 55);
    auto req = ParseConnectRequest({{":method", "CONNECT"}, {":authority", s},
                                    {"forwarded", s}, {"baggage", s}, {"traceparent", s}});
    CHECK(req.ok() == a.ok());
    if (req.ok()) CHECK(IsValidTraceparent(req->traceparent));
  }
  CHECK(accepted > 0);
}

TEST_CASE("mutated valid authorities are either rejected or still valid") {
  std::mt19937 rng(99);
  const char* seeds[] = {"10.0.0.1:80", "[fd00::1]:15008", "svc.ns.svc.cluster.local:9080"};
  for (int i = 0; i < 3000; ++i) {
    std::string s = seeds[i % 3];
    s[rng() % s.size()] = static_cast<char>(rng());
    auto a = ParseAuthority(s);
    if (a.ok()) CHECK(ParseAuthority(a->ToString()).ok());
  }
}

}  // namespace
}  // namespace ambit::hbone
