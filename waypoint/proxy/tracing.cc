#include "waypoint/proxy/tracing.h"

#include <fmt/format.h>

#include <chrono>

#include "waypoint/proxy/state.h"

namespace ambit::waypoint {

namespace {

using telemetry::SpanId;
using telemetry::TraceContext;
using telemetry::TraceId;

int64_t WallNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Ids need to be unique, not secret: a per-thread xorshift seeded once.
uint64_t RandomId() {
  thread_local uint64_t s = [] {
    uint64_t seed = static_cast<uint64_t>(WallNanos()) ^
                    reinterpret_cast<uintptr_t>(&s) * 0x9E3779B97F4A7C15ull;
    return seed != 0 ? seed : 0x2545F4914F6CDD1Dull;
  }();
  for (;;) {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    const uint64_t v = s * 0x2545F4914F6CDD1Dull;
    if (v != 0) return v;
  }
}

constexpr std::string_view kTraceHeaders[] = {
    "traceparent",       "tracestate",   "b3",           "x-b3-traceid", "x-b3-spanid",
    "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"};

// The incoming context, W3C first (Envoy's OpenTelemetry tracer reads only
// traceparent; B3 is Zipkin's and Istio's default): a malformed header is
// ignored and the next format tried.
std::optional<TraceContext> Incoming(const TraceHeaders& in, RequestTrace& t) {
  if (in.traceparent) {
    if (auto c = telemetry::ParseTraceparent(*in.traceparent)) {
      if (in.tracestate && telemetry::IsForwardableTracestate(*in.tracestate)) {
        t.tracestate = std::string(*in.tracestate);
      }
      return c;
    }
  }
  if (in.b3) {
    if (auto c = telemetry::ParseB3Single(*in.b3)) {
      t.b3_in = true;
      t.b3_single = true;
      return c;  // (a bare "0"/"1"/"d" has no ids: a decision only)
    }
  }
  if (in.b3_trace && in.b3_span) {
    auto c = telemetry::ParseB3Multi(*in.b3_trace, *in.b3_span, in.b3_sampled.value_or(""),
                                     in.b3_flags.value_or(""));
    if (c) {
      t.b3_in = true;
      return c;
    }
  }
  if (in.b3_sampled) {  // a decision without ids
    TraceContext c;
    if (*in.b3_sampled == "1" || *in.b3_sampled == "true") c.sampled = true;
    if (*in.b3_sampled == "0" || *in.b3_sampled == "false") c.sampled = false;
    if (c.sampled) {
      t.b3_in = true;
      return c;
    }
  }
  return std::nullopt;
}

}  // namespace

void TraceHeaders::Note(std::string_view name, std::string_view value) {
  // Most headers are ruled out by their length and first letter.
  if (name.size() < 2 || name.size() > 17) return;
  const char c = base::AsciiLower(name[0]);
  if (c != 't' && c != 'b' && c != 'x') return;
  auto set = [&](std::optional<std::string_view>& slot, std::string_view want) {
    if (!base::EqualsIgnoreCase(name, want)) return false;
    if (!slot) slot = value;
    any = true;
    return true;
  };
  switch (name.size()) {
    case 11: (void)(set(traceparent, "traceparent") || set(b3_span, "x-b3-spanid")); break;
    case 10: (void)(set(tracestate, "tracestate") || set(b3_flags, "x-b3-flags")); break;
    case 2: (void)set(b3, "b3"); break;
    case 12: (void)(set(b3_trace, "x-b3-traceid") || set(b3_sampled, "x-b3-sampled")); break;
    case 17: (void)set(b3_parent, "x-b3-parentspanid"); break;
    default: break;
  }
}

bool IsTraceHeader(std::string_view name) {
  for (std::string_view n : kTraceHeaders) {
    if (base::EqualsIgnoreCase(name, n)) return true;
  }
  return false;
}

const route::TracingPolicy* TracingPolicyFor(const WaypointState& st, const RequestInfo& info) {
  if (st.tracing == nullptr) return nullptr;
  const route::TracingPolicy* p = &st.tracing->waypoint;
  if (info.service != nullptr) p = &st.tracing->For(info.service->ns, info.service->hostname);
  return p->active() ? p : nullptr;
}

void StartTraceWith(const WaypointState& st, RequestInfo& info, const TraceHeaders& headers,
                    HeaderLookup find, uint64_t random) {
  if (const route::TracingPolicy* policy = TracingPolicyFor(st, info)) {
    StartTraceWith(st, *policy, info, headers, find, random);
  }
}

void StartTraceWith(const WaypointState& st, const route::TracingPolicy& active,
                    RequestInfo& info, const TraceHeaders& headers, HeaderLookup find,
                    uint64_t random) {
  const route::TracingPolicy* policy = &active;
  RequestTrace& t = info.trace;
  t = RequestTrace{};
  t.active = true;
  t.policy = policy;
  t.state = &st;
  t.server_start_ns = WallNanos();
  t.had_headers = headers.any;
  std::optional<TraceContext> in = Incoming(headers, t);
  if (in && in->trace_id.valid()) {
    t.trace_id = in->trace_id;
    t.parent = in->span_id;
    t.trace_64 = in->trace_id_64;
  } else {
    t.trace_id = TraceId{RandomId(), RandomId()};
    if (in && in->trace_id_64) t.trace_64 = true;
  }
  t.server = SpanId{RandomId()};
  t.client = SpanId{RandomId()};
  // The downstream's decision wins (Envoy honours a sampled flag it is
  // given); otherwise randomSamplingPercentage, in 1/10000 of a percent.
  if (in && in->sampled) {
    t.sampled = *in->sampled;
  } else {
    const uint64_t draw = random % 1'000'000;
    t.sampled = static_cast<double>(draw) < policy->sampling_percent * 10'000.0;
  }
  for (const route::CustomTag& tag : policy->tags) {
    if (tag.kind != route::CustomTag::Kind::kHeader) continue;
    auto v = find(tag.value);
    std::string value = v ? std::string(v->substr(0, 1024)) : tag.default_value;
    if (!value.empty()) t.header_tags.emplace_back(tag.tag, std::move(value));
  }
}

std::vector<std::pair<std::string, std::string>> UpstreamTraceHeaders(RequestTrace& t) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(5);
  if (t.client_start_ns == 0) t.client_start_ns = WallNanos();
  out.emplace_back("traceparent", telemetry::FormatTraceparent(t.trace_id, t.client, t.sampled));
  if (!t.tracestate.empty()) out.emplace_back("tracestate", t.tracestate);
  const bool zipkin = t.policy != nullptr && t.policy->provider != nullptr &&
                      t.policy->provider->kind == route::TracingProvider::Kind::kZipkin;
  if (t.b3_in && t.b3_single) {
    out.emplace_back("b3",
                     telemetry::FormatB3Single(t.trace_id, t.trace_64, t.client, t.server, t.sampled));
  } else if (t.b3_in || zipkin) {
    out.emplace_back("x-b3-traceid", telemetry::B3TraceIdHex(t.trace_id, t.trace_64));
    out.emplace_back("x-b3-spanid", t.client.Hex());
    out.emplace_back("x-b3-parentspanid", t.server.Hex());
    out.emplace_back("x-b3-sampled", t.sampled ? "1" : "0");
  }
  return out;
}

bool NextClientSpan(RequestTrace& t, uint32_t try_no) {
  if (try_no <= t.try_no || t.client_start_ns == 0) return false;
  const int64_t now = WallNanos();
  t.earlier_tries.push_back({t.client, t.client_start_ns, std::max(now, t.client_start_ns)});
  t.client = SpanId{RandomId()};
  t.client_start_ns = now;
  t.try_no = try_no;
  return true;
}

void StampTraceTry(RequestInfo& info, uint32_t try_no, std::string& head) {
  if (!info.trace.active || !NextClientSpan(info.trace, try_no)) return;
  // Our own headers, lower-case, one each: replace each value up to its CRLF.
  for (const auto& [name, value] : UpstreamTraceHeaders(info.trace)) {
    const std::string key = "\r\n" + name + ": ";
    const size_t at = head.find(key);
    if (at == std::string::npos) continue;
    const size_t from = at + key.size();
    const size_t to = head.find("\r\n", from);
    if (to == std::string::npos) continue;
    head.replace(from, to - from, value);
  }
}

std::vector<SpanRecord> FinishTrace(const RequestInfo& info) {
  const RequestTrace& t = info.trace;
  std::vector<SpanRecord> out;
  if (!t.active || !t.sampled || t.policy == nullptr || t.state == nullptr ||
      t.policy->disable_span_reporting) {
    return out;
  }
  const WaypointState& st = *t.state;
  const int64_t end = WallNanos();
  SpanRecord server;
  server.provider = t.policy->provider;
  server.trace_id = t.trace_id;
  server.span_id = t.server;
  server.parent_id = t.parent;
  server.server = true;
  // Envoy's operation name for a waypoint route: the service host:port/*.
  const std::string host = info.service != nullptr
                               ? fmt::format("{}:{}", info.service->hostname,
                                             info.downstream_local.port())
                               : info.authority;
  server.name = host + "/*";
  const std::string& svc_name =
      st.self.canonical_name.empty() ? st.self.name : st.self.canonical_name;
  server.service_name = fmt::format("{}.{}", svc_name, st.self.ns);
  if (!st.self.addresses.empty()) server.local_ip = st.self.addresses.front().ToString();
  server.start_ns = t.server_start_ns;
  server.end_ns = std::max(end, t.server_start_ns);
  server.error = info.response_code == 0 || info.response_code >= 500;
  auto& tags = server.tags;
  const std::string cluster = RequestCluster(info);
  tags = {{"component", "proxy"},
          {"http.method", info.method},
          {"http.url", fmt::format("http://{}{}", info.authority, info.path)},
          {"http.protocol", info.protocol},
          {"http.status_code", std::to_string(info.response_code)},
          {"response_flags", info.response_flags},
          {"upstream_cluster", cluster},
          {"upstream_cluster.name", cluster},
          {"guid:x-request-id", info.request_id},
          {"user_agent", info.user_agent.empty() ? "-" : info.user_agent},
          {"request_size", std::to_string(info.bytes_received)},
          {"response_size", std::to_string(info.bytes_sent)},
          {"peer.address", info.downstream_remote.ip().ToString()},
          {"node_id", fmt::format("waypoint~{}~{}.{}~{}.svc.cluster.local",
                                  server.local_ip, st.self.name, st.self.ns, st.self.ns)},
          {"istio.canonical_service", svc_name},
          {"istio.canonical_revision",
           st.self.canonical_revision.empty() ? "latest" : st.self.canonical_revision},
          {"istio.namespace", st.self.ns},
          {"istio.cluster_id", st.self.cluster_id.empty() ? "Kubernetes" : st.self.cluster_id},
          {"istio.mesh_id", "cluster.local"}};
  if (!info.upstream_host.empty()) tags.emplace_back("upstream_address", info.upstream_host);
  if (info.source != nullptr) {
    tags.emplace_back("downstream_cluster", fmt::format("{}.{}", info.source->name,
                                                        info.source->ns));
  }
  if (server.error) tags.emplace_back("error", "true");
  for (const route::CustomTag& tag : t.policy->tags) {
    if (tag.kind == route::CustomTag::Kind::kLiteral) tags.emplace_back(tag.tag, tag.value);
  }
  for (const auto& kv : t.header_tags) tags.push_back(kv);
  for (size_t i = 0; i < t.earlier_tries.size(); ++i) {
    const auto& e = t.earlier_tries[i];
    SpanRecord client = server;
    client.span_id = e.id;
    client.parent_id = t.server;
    client.server = false;
    client.name = fmt::format("router {} egress", cluster);
    client.start_ns = std::max(e.start_ns, server.start_ns);
    client.end_ns = std::min(std::max(client.start_ns, e.end_ns), server.end_ns);
    client.error = true;  // a retried try did not give the answer
    client.tags.emplace_back("upstream.attempt", std::to_string(i + 1));
    out.push_back(std::move(client));
  }
  if (t.client_start_ns != 0) {
    SpanRecord client = server;
    client.span_id = t.client;
    client.parent_id = t.server;
    client.server = false;
    client.name = fmt::format("router {} egress", cluster);
    client.start_ns = std::max(t.client_start_ns, server.start_ns);
    client.end_ns = std::max(client.start_ns, end);
    if (!t.earlier_tries.empty()) {
      client.tags.emplace_back("upstream.attempt", std::to_string(t.earlier_tries.size() + 1));
    }
    out.push_back(std::move(server));
    out.push_back(std::move(client));
  } else {
    out.push_back(std::move(server));
  }
  return out;
}

}  // namespace ambit::waypoint
