// Trace context propagation formats (pure functions, fuzzed by
// fuzz_trace_context): W3C Trace Context (`traceparent`, `tracestate`) and
// Zipkin B3 (the single `b3` header and the multi-header form
// `x-b3-traceid` / `x-b3-spanid` / `x-b3-parentspanid` / `x-b3-sampled` /
// `x-b3-flags`). Parsers accept only what the specs allow; anything else is
// "no context" so the proxy starts a new trace instead of forwarding junk.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ambit::telemetry {

// 128-bit trace id (B3 64-bit ids are widened with 8 leading zero bytes,
// as the B3 spec says receivers do). All-zero is invalid in both formats.
struct TraceId {
  uint64_t hi = 0, lo = 0;
  bool valid() const { return hi != 0 || lo != 0; }
  std::string Hex() const;  // 32 lower-case hex digits
  bool operator==(const TraceId&) const = default;
};

struct SpanId {
  uint64_t v = 0;
  bool valid() const { return v != 0; }
  std::string Hex() const;  // 16 lower-case hex digits
  bool operator==(const SpanId&) const = default;
};

// What a downstream sent: the trace it belongs to and its span (our parent).
struct TraceContext {
  TraceId trace_id;
  SpanId span_id;                 // the sender's span: the parent of ours
  std::optional<bool> sampled;    // absent = the sender deferred the decision
  bool debug = false;             // B3 "d" / x-b3-flags: 1 (forces sampling)
  bool trace_id_64 = false;       // B3 64-bit trace id (echoed as 16 digits)
};

// traceparent: "VV-<32 hex>-<16 hex>-FF" (version 00 exactly that; a higher
// version may carry more after another '-'; version ff is invalid). Ids must
// be lower-case hex and non-zero.
std::optional<TraceContext> ParseTraceparent(std::string_view v);
// "00-<trace>-<span>-01|00".
std::string FormatTraceparent(const TraceId& t, const SpanId& s, bool sampled);

// b3: "{trace}-{span}[-{sampled}[-{parent}]]" or just "0", "1", "d" (a bare
// sampling decision: returned with invalid ids, callers only take `sampled`).
std::optional<TraceContext> ParseB3Single(std::string_view v);
// "{trace}-{span}-{1|0}-{parent}" (trace as 16 digits when `trace_64`).
std::string FormatB3Single(const TraceId& t, bool trace_64, const SpanId& span,
                           const SpanId& parent, bool sampled);
// The trace id as B3 writes it (16 digits when the sender used 64-bit ids).
std::string B3TraceIdHex(const TraceId& t, bool trace_64);

// x-b3-*: trace id (16 or 32 hex) and span id (16 hex) both required for a
// context; `sampled` is "1"/"0" (also "true"/"false", which old tracers
// send); flags "1" = debug. Returns nullopt if the ids are missing/invalid.
std::optional<TraceContext> ParseB3Multi(std::string_view trace_id, std::string_view span_id,
                                         std::string_view sampled, std::string_view flags);
// Parses a hex id of exactly 16 (span, 64-bit trace) or 32 (trace) digits.
std::optional<SpanId> ParseSpanIdHex(std::string_view hex);
std::optional<TraceId> ParseTraceIdHex(std::string_view hex);

// tracestate is forwarded as received when it is a plausible list (at most
// 32 members, 512 bytes, printable ASCII); otherwise dropped.
bool IsForwardableTracestate(std::string_view v);

}  // namespace ambit::telemetry
