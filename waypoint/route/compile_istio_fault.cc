// VirtualService http[].fault (delay and abort, per-million shares) for the
// route model (route_table.h Fault).
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "waypoint/route/compile_istio_internal.h"

namespace ambit::waypoint::route::internal {

namespace {

// gRPC status names as Istio's grpcStatus takes them.
constexpr std::string_view kGrpcCodes[] = {
    "OK",           "CANCELLED",        "UNKNOWN",          "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND",   "ALREADY_EXISTS",   "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",        "UNAVAILABLE",      "DATA_LOSS",
    "UNAUTHENTICATED"};

// {value: percent} (or the deprecated integer `percent`) → per million;
// absent → 0 with a finding (istiod leaves Envoy's default of 0 %).
std::optional<uint32_t> FaultShare(const Doc& doc, const YAML::Node& n, const std::string& field,
                                   Sink& sink) {
  const YAML::Node pct = Child(n, "percentage"), old = Child(n, "percent");
  double value = 0;
  if (Present(pct)) {
    const YAML::Node v = Child(pct, "value");
    char* end = nullptr;
    const std::string s = v.IsScalar() ? v.Scalar() : "";
    value = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !(value >= 0 && value <= 100)) {
      sink.Invalid(doc, pct, fmt::format("{}.percentage.value: '{}' is not a percentage in "
                                         "0..100", field, s));
      return std::nullopt;
    }
  } else if (Present(old)) {
    auto v = Uint(doc, old, Field(field, "percent"), 100, sink);
    if (!v) return std::nullopt;
    value = static_cast<double>(*v);
  } else {
    sink.Add(doc, n, fmt::format("{}: no percentage: no request is affected (as istiod "
                                 "programs Envoy); set percentage.value", field));
  }
  return static_cast<uint32_t>(value * 10'000 + 0.5);
}

}  // namespace

bool CompileFault(const Doc& doc, const YAML::Node& n, const std::string& field, Sink& sink,
                  Fault* out) {
  if (!n.IsMap()) {
    sink.Add(doc, n, fmt::format("{}: expected a map; rule dropped", field));
    return false;
  }
  ReportUnknownKeys(doc, n, field, {"delay", "abort"}, sink, "unknown field; ignored");
  const YAML::Node delay = Child(n, "delay"), abort = Child(n, "abort");
  if (!Present(delay) && !Present(abort)) {
    sink.Add(doc, n, fmt::format("{}: needs delay or abort; rule dropped", field));
    return false;
  }
  if (Present(delay)) {
    const std::string df = Field(field, "delay");
    ReportUnknownKeys(doc, delay, df, {"fixedDelay", "percentage", "percent", "exponentialDelay"},
                      sink, "unknown field; ignored");
    if (Present(Child(delay, "exponentialDelay"))) {
      sink.Add(doc, Child(delay, "exponentialDelay"),
               fmt::format("{}.exponentialDelay: not supported (Envoy neither); rule dropped", df));
      return false;
    }
    auto d = Duration(doc, Child(delay, "fixedDelay"), Field(df, "fixedDelay"), sink);
    auto share = d ? FaultShare(doc, delay, df, sink) : std::nullopt;
    if (!d || !share) return false;
    out->delay = *d;
    out->delay_per_million = *share;
  }
  if (Present(abort)) {
    const std::string af = Field(field, "abort");
    ReportUnknownKeys(doc, abort, af, {"httpStatus", "grpcStatus", "http2Error", "percentage"},
                      sink, "unknown field; ignored");
    const YAML::Node http = Child(abort, "httpStatus"), grpc = Child(abort, "grpcStatus");
    if (Present(http) == Present(grpc)) {
      sink.Add(doc, abort, fmt::format("{}: exactly one of httpStatus, grpcStatus is required "
                                       "(http2Error is not supported); rule dropped", af));
      return false;
    }
    if (Present(http)) {
      auto v = Uint(doc, http, Field(af, "httpStatus"), 599, sink);
      if (!v || *v < 200) {
        if (v) sink.Add(doc, http, fmt::format("{}.httpStatus: must be 200..599; rule dropped", af));
        return false;
      }
      out->abort_status = static_cast<int>(*v);
    } else {
      auto name = Scalar(doc, grpc, Field(af, "grpcStatus"), sink);
      if (!name) return false;
      auto it = std::find(std::begin(kGrpcCodes), std::end(kGrpcCodes), *name);
      if (it == std::end(kGrpcCodes) || it == std::begin(kGrpcCodes)) {
        sink.Add(doc, grpc, fmt::format("{}.grpcStatus: '{}' is not a gRPC error code name "
                                        "(e.g. UNAVAILABLE); rule dropped", af, *name));
        return false;
      }
      out->abort_grpc = static_cast<int>(it - std::begin(kGrpcCodes));
      out->abort_status = 200;  // gRPC answers travel as HTTP 200 + grpc-status
    }
    auto share = FaultShare(doc, abort, af, sink);
    if (!share) return false;
    out->abort_per_million = *share;
  }
  return true;
}

}  // namespace ambit::waypoint::route::internal
