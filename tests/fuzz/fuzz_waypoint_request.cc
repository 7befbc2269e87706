// Fuzz target: the waypoint's HTTP/1.1 request path without sockets — each
// request the downstream parser accepts is rebuilt for the upstream
// (BuildUpstreamRequest) and must parse there to the same request.
// Input layout: byte 0 = feed chunk size (0 = all at once); rest: bytes
// from the client. Properties: the upstream head parses; method, target and
// framing are unchanged; no hop-by-hop header survives except the framing
// and upgrade headers the waypoint itself writes; exactly one x-request-id;
// x-forwarded-for ends with the client IP.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/ascii.h"
#include "common/http1/codec.h"
#include "tests/fuzz/fuzz_util.h"
#include "waypoint/proxy/http_common.h"

namespace {

using namespace ambit;
using Event = http1::Parser::Event;

void CheckUpstream(const http1::RequestHead& down) {
  waypoint::UpstreamRequest up = waypoint::BuildUpstreamRequest(down, "10.1.2.3");
  if (!up.ok) {  // refused with 400 by the waypoint (an upgrade without a protocol)
    FUZZ_CHECK(down.upgrade);
    return;
  }
  http1::Parser p(http1::Kind::kRequest, http1::Limits{1 << 20, 1000});
  http1::Parser::Result r = p.Next(up.head);
  FUZZ_CHECK(r.event == Event::kHead);
  const http1::RequestHead& h = p.request();
  FUZZ_CHECK(h.method == down.method);
  FUZZ_CHECK(h.target == down.target);
  FUZZ_CHECK(h.framing == down.framing);
  FUZZ_CHECK(h.content_length == down.content_length);
  FUZZ_CHECK(h.upgrade == down.upgrade);
  int ids = 0;
  for (const auto& x : h.headers) {
    if (base::EqualsIgnoreCase(x.name, "x-request-id")) ++ids;
    if (waypoint::IsHopByHop(x.name)) {
      const bool ours = (base::EqualsIgnoreCase(x.name, "transfer-encoding") &&
                         x.value == "chunked") ||
                        (down.upgrade && (base::EqualsIgnoreCase(x.name, "connection") ||
                                          base::EqualsIgnoreCase(x.name, "upgrade")));
      FUZZ_CHECK(ours);
    }
  }
  FUZZ_CHECK(ids == 1);
  auto xff = http1::FindHeader(h.headers, "x-forwarded-for");
  FUZZ_CHECK(xff.has_value() && xff->ends_with("10.1.2.3"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = data[0] == 0 ? size : data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  http1::Parser p(http1::Kind::kRequest);
  std::string pending;
  size_t off = 0;
  for (int steps = 0; steps < 100000; ++steps) {
    const size_t take = std::min(chunk, rest.size() - off);
    pending.append(rest.substr(off, take));
    off += take;
    http1::Parser::Result r = p.Next(pending);
    if (r.event == Event::kHead) CheckUpstream(p.request());
    pending.erase(0, r.consumed);
    if (r.event == Event::kError || r.event == Event::kUpgrade) break;
    if (r.event == Event::kNeedMore && off == rest.size()) break;
  }
  return 0;
}
