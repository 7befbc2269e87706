// W3C Trace Context and B3 parsing/formatting (common/telemetry/trace_context.h).
#include "common/telemetry/trace_context.h"

#include <doctest/doctest.h>

#include <string>

namespace ambit::telemetry {
namespace {

constexpr std::string_view kTid = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSid = "00f067aa0ba902b7";

std::string Tp(std::string_view version, std::string_view tid, std::string_view sid,
               std::string_view flags) {
  return std::string(version) + "-" + std::string(tid) + "-" + std::string(sid) + "-" +
         std::string(flags);
}

TEST_CASE("traceparent: the W3C example parses and formats back") {
  auto c = ParseTraceparent(Tp("00", kTid, kSid, "01"));
  REQUIRE(c.has_value());
  CHECK(c->trace_id.Hex() == kTid);
  CHECK(c->span_id.Hex() == kSid);
  CHECK(*c->sampled);
  CHECK(FormatTraceparent(c->trace_id, c->span_id, true) == Tp("00", kTid, kSid, "01"));
  CHECK(FormatTraceparent(c->trace_id, c->span_id, false) == Tp("00", kTid, kSid, "00"));
  auto unsampled = ParseTraceparent(Tp("00", kTid, kSid, "00"));
  REQUIRE(unsampled.has_value());
  CHECK_FALSE(*unsampled->sampled);
  // Other flag bits are ignored; only bit 0 is "sampled".
  CHECK(*ParseTraceparent(Tp("00", kTid, kSid, "03"))->sampled);
  CHECK_FALSE(*ParseTraceparent(Tp("00", kTid, kSid, "02"))->sampled);
}

TEST_CASE("traceparent: malformed values are no context") {
  CHECK_FALSE(ParseTraceparent(Tp("ff", kTid, kSid, "01")));               // version ff
  CHECK_FALSE(ParseTraceparent(Tp("00", std::string(32, '0'), kSid, "01")));  // zero trace
  CHECK_FALSE(ParseTraceparent(Tp("00", kTid, std::string(16, '0'), "01")));  // zero span
  CHECK_FALSE(ParseTraceparent(Tp("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kSid, "01")));
  CHECK_FALSE(ParseTraceparent(Tp("00", kTid.substr(1), kSid, "01")));      // short
  CHECK_FALSE(ParseTraceparent(Tp("00", kTid, kSid, "1")));
  CHECK_FALSE(ParseTraceparent(Tp("0g", kTid, kSid, "01")));
  CHECK_FALSE(ParseTraceparent(Tp("00", kTid, kSid, "zz")));
  CHECK_FALSE(ParseTraceparent(Tp("00", kTid, kSid, "01") + "-x"));  // 00 is exactly 55
  CHECK_FALSE(ParseTraceparent(Tp("01", kTid, kSid, "01") + "x"));   // more needs a '-'
  CHECK(ParseTraceparent(Tp("01", kTid, kSid, "01") + "-future"));   // later versions may
  CHECK_FALSE(ParseTraceparent(""));
  CHECK_FALSE(ParseTraceparent(std::string(100000, '0')));
  CHECK_FALSE(ParseTraceparent(Tp("00", kTid, kSid, "01").replace(2, 1, "_")));
}

TEST_CASE("b3 single: ids, decision, optional parent, bare decisions") {
  auto c = ParseB3Single(std::string(kTid) + "-" + std::string(kSid) + "-1-05e3ac9a4f6e3b90");
  REQUIRE(c.has_value());
  CHECK(c->trace_id.Hex() == kTid);
  CHECK(c->span_id.Hex() == kSid);
  CHECK(*c->sampled);
  CHECK_FALSE(c->trace_id_64);
  auto c64 = ParseB3Single("80f198ee56343ba8-e457b5a2e4d86bd1");
  REQUIRE(c64.has_value());
  CHECK(c64->trace_id_64);
  CHECK(c64->trace_id.Hex() == "000000000000000080f198ee56343ba8");
  CHECK_FALSE(c64->sampled.has_value());
  CHECK(B3TraceIdHex(c64->trace_id, true) == "80f198ee56343ba8");
  auto d = ParseB3Single("80f198ee56343ba8-e457b5a2e4d86bd1-d");
  REQUIRE(d.has_value());
  CHECK(d->debug);
  CHECK(*d->sampled);
  CHECK_FALSE(ParseB3Single("0")->trace_id.valid());
  CHECK_FALSE(*ParseB3Single("0")->sampled);
  CHECK(*ParseB3Single("1")->sampled);
  CHECK_FALSE(ParseB3Single("80f198ee56343ba8-e457b5a2e4d86bd1-2"));
  CHECK_FALSE(ParseB3Single("80f198ee56343ba8-e457b5a2e4d86bd1-1-xyz"));
  CHECK_FALSE(ParseB3Single("80f198ee56343ba8"));
  CHECK_FALSE(ParseB3Single("0000000000000000-e457b5a2e4d86bd1-1"));
  CHECK_FALSE(ParseB3Single("80f198ee56343ba-e457b5a2e4d86bd1-1"));  // 15 digits
  CHECK_FALSE(ParseB3Single(""));
  const SpanId span{0x1111111111111111ull}, parent{0x2222222222222222ull};
  CHECK(FormatB3Single(c64->trace_id, true, span, parent, true) ==
        "80f198ee56343ba8-1111111111111111-1-2222222222222222");
  CHECK(FormatB3Single(c->trace_id, false, span, SpanId{}, false) ==
        std::string(kTid) + "-1111111111111111-0");
}

TEST_CASE("x-b3-* multi headers") {
  auto c = ParseB3Multi(kTid, kSid, "1", "");
  REQUIRE(c.has_value());
  CHECK(*c->sampled);
  CHECK_FALSE(ParseB3Multi(kTid, kSid, "", "")->sampled.has_value());
  CHECK(*ParseB3Multi(kTid, kSid, "true", "")->sampled);
  CHECK_FALSE(*ParseB3Multi(kTid, kSid, "0", "")->sampled);
  CHECK(ParseB3Multi(kTid, kSid, "0", "1")->debug);  // debug forces sampling
  CHECK(*ParseB3Multi(kTid, kSid, "0", "1")->sampled);
  CHECK(ParseB3Multi("80f198ee56343ba8", kSid, "", "")->trace_id_64);
  CHECK_FALSE(ParseB3Multi(kTid, "", "1", ""));
  CHECK_FALSE(ParseB3Multi("", kSid, "1", ""));
  CHECK_FALSE(ParseB3Multi(kTid, "00f067aa0ba902b", "1", ""));
}

TEST_CASE("tracestate is forwarded only when plausible") {
  CHECK(IsForwardableTracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
  CHECK_FALSE(IsForwardableTracestate(""));
  CHECK_FALSE(IsForwardableTracestate(std::string(513, 'a')));
  CHECK_FALSE(IsForwardableTracestate("a=1\x01"));
  std::string many;
  for (int i = 0; i < 33; ++i) many += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
  CHECK_FALSE(IsForwardableTracestate(many));
}

}  // namespace
}  // namespace ambit::telemetry
