// Fuzz target: PROXY protocol v2 encoding and decoding (the "sandwich"
// header toward a waypoint's application tunnel, ISTIO-COMPAT §2.7).
// The input is used twice:
//  1. as a header description (flags, two addresses, ports, TLVs): what the
//     encoder writes decodes to the same header, and no proper prefix of it
//     decodes (a reader would wait for more bytes, not act on a partial one);
//  2. as bytes from a peer: the decoder never reads past the input, never
//     claims more bytes than it has, and what it accepts re-encodes to a
//     header that decodes to the same thing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/net/proxy_protocol.h"
#include "tests/fuzz/fuzz_util.h"

using ambit::net::DecodeProxyV2;
using ambit::net::EncodeProxyV2;
using ambit::net::IpAddress;
using ambit::net::ProxyHeader;
using ambit::net::SocketAddress;

namespace {

// Reads bytes from the input, zeros once it runs out.
struct Reader {
  const uint8_t* p;
  size_t n;
  uint8_t Byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  uint16_t U16() { return static_cast<uint16_t>(Byte() << 8 | Byte()); }
  IpAddress Ip(bool v6) {
    if (!v6) return IpAddress::V4(static_cast<uint32_t>(U16()) << 16 | U16());
    std::array<uint8_t, 16> b{};
    for (auto& x : b) x = Byte();
    return IpAddress::V6(b);
  }
};

bool SameHeader(const ProxyHeader& a, const ProxyHeader& b) {
  if (a.local != b.local || a.tlvs != b.tlvs) return false;
  return a.local || (a.source == b.source && a.destination == b.destination);
}

void EncodeDescribed(const uint8_t* data, size_t size) {
  Reader r{data, size};
  uint8_t flags = r.Byte();
  ProxyHeader h;
  h.local = (flags & 1) != 0;
  IpAddress src = r.Ip(flags & 2), dst = r.Ip(flags & 4);
  h.source = SocketAddress(src, r.U16());
  h.destination = SocketAddress(dst, r.U16());
  size_t body = 0;
  while (r.n > 0) {
    uint8_t type = r.Byte();
    size_t len = r.U16() % 512;
    len = len < r.n ? len : r.n;
    h.tlvs.push_back({type, std::string(reinterpret_cast<const char*>(r.p), len)});
    r.p += len;
    r.n -= len;
    body += 3 + len;
  }
  auto enc = EncodeProxyV2(h);
  size_t addrs = h.local ? 0 : (src.is_v4() && dst.is_v4() ? 12 : 36);
  if (!enc.ok()) {
    FUZZ_CHECK(addrs + body > 65535);  // the only reason to refuse
    return;
  }
  FUZZ_CHECK(enc->size() == 16 + addrs + body);
  auto dec = DecodeProxyV2(*enc + "payload");
  FUZZ_CHECK(dec.ok());
  FUZZ_CHECK(dec->has_value());
  FUZZ_CHECK((*dec)->size == enc->size());
  FUZZ_CHECK(SameHeader((*dec)->header, h));
  for (size_t cut : {size_t{0}, size_t{11}, size_t{15}, size_t{16}, enc->size() / 2,
                     enc->size() - 1}) {
    if (cut >= enc->size()) continue;
    auto part = DecodeProxyV2(std::string_view(*enc).substr(0, cut));
    FUZZ_CHECK(part.ok());
    FUZZ_CHECK(!part->has_value());
  }
}

void DecodeRaw(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto dec = DecodeProxyV2(in);
  if (!dec.ok()) {
    FUZZ_CHECK(!dec.status().message().empty());
    return;
  }
  if (!dec->has_value()) return;
  FUZZ_CHECK((*dec)->size >= 16 && (*dec)->size <= size);
  // Decoding only what it said it took gives the same header.
  auto exact = DecodeProxyV2(in.substr(0, (*dec)->size));
  FUZZ_CHECK(exact.ok() && exact->has_value() && SameHeader((*exact)->header, (*dec)->header));
  auto again = EncodeProxyV2((*dec)->header);
  FUZZ_CHECK(again.ok());
  auto redec = DecodeProxyV2(*again);
  FUZZ_CHECK(redec.ok() && redec->has_value());
  FUZZ_CHECK(SameHeader((*redec)->header, (*dec)->header));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  EncodeDescribed(data, size);
  DecodeRaw(data, size);
  return 0;
}
