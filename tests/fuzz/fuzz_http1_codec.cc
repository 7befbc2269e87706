// Fuzz target: common/http1's Parser (requests or responses). Input layout:
//   byte 0: bit 0 = response, bit 1 = the request was HEAD, bits 2..7 = feed
//   chunk size (0 = all at once); rest: the bytes of the connection.
// Properties: consumed never exceeds what was fed and the loop always makes
// progress; a Content-Length message delivers exactly that many body bytes;
// a parsed head, serialized again, parses to the same head.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/http1/codec.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ambit::http1;
using Event = Parser::Event;

void CheckRoundTrip(const RequestHead& h) {
  std::string out;
  Headers hs;
  for (const auto& x : h.headers) {
    // Framing is re-declared by the serializer's caller; keep the rest.
    hs.push_back(x);
  }
  AppendRequestHead(out, h.method, h.target, hs);
  Parser again(Kind::kRequest);
  Parser::Result r = again.Next(out);
  FUZZ_CHECK(r.event == Event::kHead || r.event == Event::kUpgrade);
  FUZZ_CHECK(again.request().method == h.method);
  FUZZ_CHECK(again.request().target == h.target);
  FUZZ_CHECK(again.request().headers.size() == h.headers.size());
  FUZZ_CHECK(again.request().framing == h.framing);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool response = (data[0] & 1) != 0;
  const size_t chunk = (data[0] >> 2) == 0 ? size : (data[0] >> 2);
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  Parser p(response ? Kind::kResponse : Kind::kRequest, Limits{4096, 20});
  if (response && (data[0] & 2) != 0) p.SetRequestMethod("HEAD");
  std::string pending;
  size_t off = 0;
  uint64_t body = 0, want = 0;
  bool counting = false;
  for (int steps = 0; steps < 100000; ++steps) {
    const size_t take = std::min(chunk, rest.size() - off);
    pending.append(rest.substr(off, take));
    off += take;
    Parser::Result r = p.Next(pending);
    FUZZ_CHECK(r.consumed <= pending.size());
    if (r.event == Event::kBody) {
      FUZZ_CHECK(!r.body.empty());
      const char* b = reinterpret_cast<const char*>(r.body.data());
      FUZZ_CHECK(b >= pending.data() && b + r.body.size() <= pending.data() + pending.size());
      body += r.body.size();
    }
    if (r.event == Event::kHead) {
      if (!response) {
        counting = p.request().framing == Framing::kContentLength;
        want = p.request().content_length;
        CheckRoundTrip(p.request());
      } else {
        counting = p.response().framing == Framing::kContentLength;
        want = p.response().content_length;
      }
      body = 0;
    }
    if (r.event == Event::kComplete && counting) {
      FUZZ_CHECK(body == want);
      counting = false;
    }
    pending.erase(0, r.consumed);
    if (r.event == Event::kError || r.event == Event::kUpgrade) break;
    if (r.event == Event::kNeedMore && off == rest.size()) {
      (void)p.Finish();
      break;
    }
  }
  return 0;
}
