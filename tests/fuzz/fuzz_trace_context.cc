// Fuzz target: the trace context parsers (common/telemetry/trace_context.h):
// traceparent, b3 (single), x-b3-* (multi, four fields split on '\n'),
// tracestate. Byte 0 picks the parser; the rest is the header value.
// Property: a parsed context formats back to a header that parses to the
// same ids and decision; nothing parsed has an all-zero id.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/telemetry/trace_context.h"
#include "tests/fuzz/fuzz_util.h"

namespace t = ambit::telemetry;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t which = data[0] % 4;
  std::string_view v(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (which) {
    case 0: {
      auto c = t::ParseTraceparent(v);
      if (!c) break;
      FUZZ_CHECK(c->trace_id.valid() && c->span_id.valid() && c->sampled.has_value());
      auto again = t::ParseTraceparent(t::FormatTraceparent(c->trace_id, c->span_id, *c->sampled));
      FUZZ_CHECK(again && again->trace_id == c->trace_id && again->span_id == c->span_id &&
                 again->sampled == c->sampled);
      break;
    }
    case 1: {
      auto c = t::ParseB3Single(v);
      if (!c || !c->trace_id.valid()) break;  // a bare decision has no ids
      FUZZ_CHECK(c->span_id.valid());
      const bool sampled = c->sampled.value_or(false);
      const t::SpanId parent{0x0102030405060708ull};
      auto again = t::ParseB3Single(
          t::FormatB3Single(c->trace_id, c->trace_id_64, c->span_id, parent, sampled));
      FUZZ_CHECK(again && again->trace_id == c->trace_id && again->span_id == c->span_id &&
                 again->sampled == sampled && again->trace_id_64 == c->trace_id_64);
      break;
    }
    case 2: {
      std::vector<std::string_view> f;
      size_t pos = 0;
      while (f.size() < 3) {
        size_t nl = v.find('\n', pos);
        if (nl == std::string_view::npos) break;
        f.push_back(v.substr(pos, nl - pos));
        pos = nl + 1;
      }
      f.push_back(v.substr(std::min(pos, v.size())));
      while (f.size() < 4) f.push_back({});
      auto c = t::ParseB3Multi(f[0], f[1], f[2], f[3]);
      if (!c) break;
      FUZZ_CHECK(c->trace_id.valid() && c->span_id.valid());
      const std::string hex = t::B3TraceIdHex(c->trace_id, c->trace_id_64);
      auto tid = t::ParseTraceIdHex(hex);
      FUZZ_CHECK(tid && *tid == c->trace_id);
      auto sid = t::ParseSpanIdHex(c->span_id.Hex());
      FUZZ_CHECK(sid && *sid == c->span_id);
      break;
    }
    default:
      if (t::IsForwardableTracestate(v)) FUZZ_CHECK(v.size() <= 512);
      break;
  }
  return 0;
}
