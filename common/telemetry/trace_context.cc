#include "common/telemetry/trace_context.h"

#include <fmt/format.h>

namespace ambit::telemetry {

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is not allowed by W3C; B3 is lower-case hex too
}

// Exactly 16 lower-case hex digits.
std::optional<uint64_t> Hex64(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    const int d = HexDigit(c);
    if (d < 0) return std::nullopt;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace

std::string TraceId::Hex() const { return fmt::format("{:016x}{:016x}", hi, lo); }
std::string SpanId::Hex() const { return fmt::format("{:016x}", v); }

std::optional<SpanId> ParseSpanIdHex(std::string_view hex) {
  auto v = Hex64(hex);
  if (!v || *v == 0) return std::nullopt;
  return SpanId{*v};
}

std::optional<TraceId> ParseTraceIdHex(std::string_view hex) {
  TraceId t;
  if (hex.size() == 16) {
    auto lo = Hex64(hex);
    if (!lo) return std::nullopt;
    t.lo = *lo;
  } else if (hex.size() == 32) {
    auto hi = Hex64(hex.substr(0, 16));
    auto lo = Hex64(hex.substr(16));
    if (!hi || !lo) return std::nullopt;
    t.hi = *hi;
    t.lo = *lo;
  } else {
    return std::nullopt;
  }
  if (!t.valid()) return std::nullopt;
  return t;
}

std::optional<TraceContext> ParseTraceparent(std::string_view v) {
  // version(2) '-' trace(32) '-' span(16) '-' flags(2) = 55 characters.
  constexpr size_t kLen = 55;
  if (v.size() < kLen) return std::nullopt;
  if (v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
  const int v0 = HexDigit(v[0]), v1 = HexDigit(v[1]);
  if (v0 < 0 || v1 < 0) return std::nullopt;
  const int version = v0 * 16 + v1;
  if (version == 0xff) return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append fields
  // after a '-', which a 00 parser ignores (W3C §3.2.4).
  if (v.size() > kLen && (version == 0 || v[kLen] != '-')) return std::nullopt;
  auto trace = ParseTraceIdHex(v.substr(3, 32));
  auto span = ParseSpanIdHex(v.substr(36, 16));
  const int f0 = HexDigit(v[53]), f1 = HexDigit(v[54]);
  if (!trace || !span || f0 < 0 || f1 < 0) return std::nullopt;
  TraceContext c;
  c.trace_id = *trace;
  c.span_id = *span;
  c.sampled = ((f0 * 16 + f1) & 0x01) != 0;
  return c;
}

// Per request on the traced path: written in place, one allocation.
static void PutHex(char* out, uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i, v >>= 4) out[i] = kDigits[v & 0xf];
}

std::string FormatTraceparent(const TraceId& t, const SpanId& s, bool sampled) {
  std::string out = "00-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx-00";
  PutHex(out.data() + 3, t.hi);
  PutHex(out.data() + 19, t.lo);
  PutHex(out.data() + 36, s.v);
  if (sampled) out[54] = '1';
  return out;
}

std::optional<TraceContext> ParseB3Single(std::string_view v) {
  TraceContext c;
  if (v == "0" || v == "1" || v == "d") {  // a bare decision, no ids
    c.sampled = v != "0";
    c.debug = v == "d";
    return c;
  }
  size_t dash = v.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto trace = ParseTraceIdHex(v.substr(0, dash));
  if (!trace) return std::nullopt;
  c.trace_id = *trace;
  c.trace_id_64 = dash == 16;
  std::string_view rest = v.substr(dash + 1);
  dash = rest.find('-');
  auto span = ParseSpanIdHex(rest.substr(0, dash));
  if (!span) return std::nullopt;
  c.span_id = *span;
  if (dash == std::string_view::npos) return c;
  rest = rest.substr(dash + 1);
  dash = rest.find('-');
  const std::string_view flag = rest.substr(0, dash);
  if (flag == "1") {
    c.sampled = true;
  } else if (flag == "0") {
    c.sampled = false;
  } else if (flag == "d") {
    c.sampled = true;
    c.debug = true;
  } else {
    return std::nullopt;
  }
  if (dash == std::string_view::npos) return c;
  // The parent span id is informational for us (we become the child of
  // `span_id`), but a malformed one makes the whole header invalid.
  if (!ParseSpanIdHex(rest.substr(dash + 1))) return std::nullopt;
  return c;
}

std::string B3TraceIdHex(const TraceId& t, bool trace_64) {
  return trace_64 && t.hi == 0 ? fmt::format("{:016x}", t.lo) : t.Hex();
}

std::string FormatB3Single(const TraceId& t, bool trace_64, const SpanId& span,
                           const SpanId& parent, bool sampled) {
  std::string out = fmt::format("{}-{}-{}", B3TraceIdHex(t, trace_64), span.Hex(),
                                sampled ? "1" : "0");
  if (parent.valid()) out += "-" + parent.Hex();
  return out;
}

std::optional<TraceContext> ParseB3Multi(std::string_view trace_id, std::string_view span_id,
                                         std::string_view sampled, std::string_view flags) {
  auto trace = ParseTraceIdHex(trace_id);
  auto span = ParseSpanIdHex(span_id);
  if (!trace || !span) return std::nullopt;
  TraceContext c;
  c.trace_id = *trace;
  c.span_id = *span;
  c.trace_id_64 = trace_id.size() == 16;
  if (sampled == "1" || sampled == "true") c.sampled = true;
  if (sampled == "0" || sampled == "false") c.sampled = false;
  if (flags == "1") {
    c.debug = true;
    c.sampled = true;
  }
  return c;
}

bool IsForwardableTracestate(std::string_view v) {
  if (v.empty() || v.size() > 512) return false;
  size_t members = 1;
  for (char c : v) {
    if (c < 0x20 || c > 0x7e) return false;
    if (c == ',') ++members;
  }
  return members <= 32;
}

}  // namespace ambit::telemetry
