// The two wire forms the span exporter speaks (pure; unit-tested):
// OTLP/HTTP JSON (ExportTraceServiceRequest: ids as hex strings, times as
// unix-nano strings) and Zipkin v2 JSON (a list of spans, times in µs; a
// 128-bit trace id whose high half is zero is written as 64-bit, as B3 does).
#pragma once

#include <span>
#include <string>

#include "waypoint/proxy/tracing.h"

namespace ambit::waypoint {

std::string EncodeOtlpJson(std::span<const SpanRecord> spans);
std::string EncodeZipkinJson(std::span<const SpanRecord> spans);

}  // namespace ambit::waypoint
