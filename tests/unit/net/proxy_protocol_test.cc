#include "common/net/proxy_protocol.h"

#include <doctest/doctest.h>

#include <string>

namespace ambit::net {
namespace {

SocketAddress Addr(const char* text) { return *SocketAddress::Parse(text); }

std::string Bytes(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

const std::string kSig =
    Bytes({0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a});

ProxyHeader Sandwich() {
  ProxyHeader h;
  h.source = Addr("10.44.1.5:40000");
  h.destination = Addr("10.96.0.30:80");
  h.tlvs.push_back({kProxyTlvPeerIdentity, "spiffe://a"});
  return h;
}

}  // namespace

TEST_CASE("PROXY v2: IPv4 header with the identity TLV, byte for byte") {
  auto enc = EncodeProxyV2(Sandwich());
  REQUIRE(enc.ok());
  // Written out from the specification's field layout, not from our encoder.
  std::string want = kSig + Bytes({0x21, 0x11, 0x00, 25,            // v2 PROXY, TCP4, 12 + 13
                                   10, 44, 1, 5, 10, 96, 0, 30,      // src, dst
                                   0x9c, 0x40, 0x00, 0x50,           // 40000, 80
                                   0xd0, 0x00, 10}) + "spiffe://a";  // TLV 0xD0
  CHECK(*enc == want);
  auto dec = DecodeProxyV2(want + "payload");
  REQUIRE(dec.ok());
  REQUIRE(dec->has_value());
  CHECK((*dec)->size == want.size());
  CHECK(!(*dec)->header.local);
  CHECK((*dec)->header.source == Addr("10.44.1.5:40000"));
  CHECK((*dec)->header.destination == Addr("10.96.0.30:80"));
  CHECK((*dec)->header.Tlv(kProxyTlvPeerIdentity) == std::optional<std::string_view>("spiffe://a"));
  CHECK(!(*dec)->header.Tlv(kProxyTlvServiceHostname).has_value());
}

TEST_CASE("PROXY v2: IPv6, and IPv4 mixed with IPv6 goes as mapped IPv6") {
  ProxyHeader h;
  h.source = Addr("[fd00::5]:1234");
  h.destination = Addr("10.96.0.30:80");
  auto enc = EncodeProxyV2(h);
  REQUIRE(enc.ok());
  REQUIRE(enc->size() == 16 + 36);
  CHECK(static_cast<uint8_t>((*enc)[13]) == 0x21);  // AF_INET6, STREAM
  CHECK(enc->substr(16 + 16, 16) ==
        Bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 96, 0, 30}));
  auto dec = DecodeProxyV2(*enc);
  REQUIRE(dec.ok());
  REQUIRE(dec->has_value());
  CHECK((*dec)->header.source == h.source);
  CHECK((*dec)->header.destination == h.destination);  // mapped comes back as IPv4
  CHECK((*dec)->header.tlvs.empty());
}

TEST_CASE("PROXY v2: LOCAL command carries no addresses; TLVs still round-trip") {
  ProxyHeader h;
  h.local = true;
  h.tlvs.push_back({0x04, std::string(5, '\0')});  // PP2_TYPE_NOOP padding
  auto enc = EncodeProxyV2(h);
  REQUIRE(enc.ok());
  CHECK(*enc == kSig + Bytes({0x20, 0x00, 0x00, 8, 0x04, 0x00, 5, 0, 0, 0, 0, 0}));
  auto dec = DecodeProxyV2(*enc);
  REQUIRE(dec.ok());
  REQUIRE(dec->has_value());
  CHECK((*dec)->header.local);
  CHECK((*dec)->header.tlvs == h.tlvs);
}

TEST_CASE("PROXY v2: every proper prefix asks for more bytes") {
  std::string full = *EncodeProxyV2(Sandwich());
  for (size_t n = 0; n < full.size(); ++n) {
    auto dec = DecodeProxyV2(std::string_view(full).substr(0, n));
    REQUIRE_MESSAGE(dec.ok(), "prefix of " << n << " bytes: " << dec.status().ToString());
    CHECK_MESSAGE(!dec->has_value(), "prefix of " << n << " bytes decoded");
  }
}

TEST_CASE("PROXY v2: malformed headers are refused with the reason") {
  std::string good = *EncodeProxyV2(Sandwich());
  auto reason = [](std::string bytes) {
    auto dec = DecodeProxyV2(bytes);
    REQUIRE(!dec.ok());
    CHECK(dec.status().code() == absl::StatusCode::kInvalidArgument);
    return std::string(dec.status().message());
  };
  CHECK(reason("GET / HTTP/1.1\r\n\r\n").find("bad signature") != std::string::npos);
  CHECK(reason("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n").find("bad signature") != std::string::npos);
  std::string v1 = good;
  v1[12] = 0x11;
  CHECK(reason(v1).find("version 1") != std::string::npos);
  std::string cmd = good;
  cmd[12] = 0x22;
  CHECK(reason(cmd).find("unknown command 2") != std::string::npos);
  std::string fam = good;
  fam[13] = 0x41;
  CHECK(reason(fam).find("unknown address family 4") != std::string::npos);
  std::string unix_fam = good;
  unix_fam[13] = 0x31;
  unix_fam[14] = 0x00;
  unix_fam[15] = static_cast<char>(216);
  CHECK(reason(unix_fam).find("UNIX") != std::string::npos);
  std::string udp = good;
  udp[13] = 0x12;
  CHECK(reason(udp).find("only TCP") != std::string::npos);
  std::string unspec = good;
  unspec[13] = 0x01;
  CHECK(reason(unspec).find("unspecified") != std::string::npos);
  std::string short_len = good;
  short_len[15] = 11;  // less than the 12 bytes of IPv4 addresses
  CHECK(reason(short_len).find("shorter than the 12-byte addresses") != std::string::npos);
  std::string tlv_over = good;
  tlv_over[16 + 12 + 2] = 11;  // TLV claims 11 bytes, 10 are there
  CHECK(reason(tlv_over).find("runs past the header") != std::string::npos);
  std::string tlv_cut = good;
  tlv_cut[15] = 12 + 2;  // two bytes of a TLV header
  CHECK(reason(tlv_cut.substr(0, 16 + 14)).find("cut short") != std::string::npos);
}

TEST_CASE("PROXY v2: oversized TLVs are an encoding error, not a truncated header") {
  ProxyHeader h = Sandwich();
  h.tlvs[0].value.assign(65536, 'x');
  auto enc = EncodeProxyV2(h);
  REQUIRE(!enc.ok());
  CHECK(enc.status().message().find("TLV 0xd0 value is 65536 bytes") != std::string_view::npos);
  h.tlvs[0].value.assign(65535 - 12 - 3, 'x');  // exactly fills the length field
  auto max = EncodeProxyV2(h);
  REQUIRE(max.ok());
  CHECK(max->size() == 16 + 65535);
  CHECK((*DecodeProxyV2(*max))->header.tlvs == h.tlvs);
  h.tlvs.push_back({0xd1, ""});
  auto over = EncodeProxyV2(h);
  REQUIRE(!over.ok());
  CHECK(over.status().message().find("at most 65535") != std::string_view::npos);
}

}  // namespace ambit::net
