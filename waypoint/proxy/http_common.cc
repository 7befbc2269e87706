#include "waypoint/proxy/http_common.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "common/base/ascii.h"

namespace ambit::waypoint {

namespace {

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '-' || c == '_' || c == '.';
  });
}

template <typename HeaderList>
std::string AddProxyHeadersImpl(HeaderList& h, std::string_view client_ip, bool lower) {
  auto find = [&](std::string_view name) -> std::string* {
    for (auto& x : h) {
      if (base::EqualsIgnoreCase(x.name, name)) return &x.value;
    }
    return nullptr;
  };
  // Exactly one x-request-id goes on: the client's first one when valid.
  std::string id;
  if (std::string* v = find("x-request-id"); v != nullptr && IsValidRequestId(*v)) id = *v;
  std::erase_if(h, [](const auto& x) { return base::EqualsIgnoreCase(x.name, "x-request-id"); });
  if (id.empty()) id = NewRequestId();
  h.push_back({"x-request-id", id});
  if (!client_ip.empty()) {
    if (std::string* v = find("x-forwarded-for"); v != nullptr) {
      v->append(", ").append(client_ip);
    } else {
      h.push_back({"x-forwarded-for", std::string(client_ip)});
    }
  }
  if (find("x-forwarded-proto") == nullptr) h.push_back({"x-forwarded-proto", "http"});
  (void)lower;
  return id;
}

}  // namespace

bool IsHopByHop(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "connection", "keep-alive", "proxy-connection", "transfer-encoding",
      "te",         "upgrade",    "trailer",          "http2-settings"};
  for (std::string_view n : kNames) {
    if (base::EqualsIgnoreCase(name, n)) return true;
  }
  return false;
}

void StripHopByHop(http1::Headers& headers) {
  std::vector<std::string> listed;
  for (const auto& h : headers) {
    if (!base::EqualsIgnoreCase(h.name, "connection")) continue;
    for (std::string_view tok : base::SplitCommaList(h.value)) listed.push_back(base::ToLower(tok));
  }
  std::erase_if(headers, [&](const http1::Header& h) {
    if (IsHopByHop(h.name)) return true;
    const std::string lower = base::ToLower(h.name);
    return std::find(listed.begin(), listed.end(), lower) != listed.end();
  });
}

std::string NewRequestId() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  uint64_t hi = gen(), lo = gen();
  hi = (hi & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // variant 10
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff,
                     hi & 0xffff, lo >> 48, lo & 0xffffffffffffull);
}

std::string AddProxyHeaders(http1::Headers& headers, std::string_view client_ip) {
  return AddProxyHeadersImpl(headers, client_ip, false);
}

std::string AddProxyHeaders(http2::H2Headers& headers, std::string_view client_ip) {
  return AddProxyHeadersImpl(headers, client_ip, true);
}

UpstreamRequest BuildUpstreamRequest(const http1::RequestHead& head, std::string_view client_ip) {
  UpstreamRequest out;
  http1::Headers h = head.headers;
  StripHopByHop(h);
  out.request_id = AddProxyHeaders(h, client_ip);
  if (head.upgrade) {
    if (auto v = http1::FindHeader(head.headers, "upgrade")) out.upgrade_value = std::string(*v);
    if (out.upgrade_value.empty() || !http1::IsValidHeaderValue(out.upgrade_value)) {
      out.ok = false;
      out.error = "upgrade request without an Upgrade protocol";
      return out;
    }
    h.push_back({"connection", "upgrade"});
    h.push_back({"upgrade", out.upgrade_value});
  }
  if (head.framing == http1::Framing::kChunked) h.push_back({"transfer-encoding", "chunked"});
  http1::AppendRequestHead(out.head, head.method, head.target, h);
  return out;
}

LocalReply NoHealthyUpstream() {
  return {503, "no healthy upstream", "UH", "no_healthy_upstream", 14};
}

LocalReply UpstreamConnectFailure(const Status& why) {
  return {503,
          fmt::format("upstream connect error or disconnect/reset before headers. reset reason: "
                      "connection failure, transport failure reason: {}",
                      std::string(why.message())),
          "UF", "upstream_reset_before_response_started{connection_failure}", 14};
}

LocalReply UpstreamResetBeforeHeaders(const Status& why) {
  return {503,
          fmt::format("upstream connect error or disconnect/reset before headers. reset reason: "
                      "{}",
                      std::string(why.message())),
          "UR", "upstream_reset_before_response_started{remote_reset}", 14};
}

LocalReply UnknownDestination(std::string_view authority) {
  return {503, fmt::format("no service or workload at {}", authority), "NR", "route_not_found",
          14};
}

LocalReply UpstreamTimeout() {
  return {504, "upstream request timeout", "UT", "upstream_response_timeout", 4};
}

std::string SerializeLocalReply(const LocalReply& r, bool close, std::string_view request_id,
                                bool http10) {
  http1::Headers h = {{"content-length", std::to_string(r.body.size())}};
  if (!r.content_type.empty() && !r.body.empty()) h.push_back({"content-type", r.content_type});
  for (const auto& [k, v] : r.headers) h.push_back({k, v});
  if (!request_id.empty()) h.push_back({"x-request-id", std::string(request_id)});
  if (close) {
    h.push_back({"connection", "close"});
  } else if (http10) {  // an HTTP/1.0 client closes unless told otherwise
    h.push_back({"connection", "keep-alive"});
  }
  std::string out;
  http1::AppendResponseHead(out, r.status, "", h);
  out += r.body;
  return out;
}

io::Task<Status> Pump(io::ByteStream& from, io::ByteStream& to, uint64_t* moved,
                      io::CancelScope* scope) {
  for (;;) {
    auto chunk = co_await from.Peek({.scope = scope});
    if (!chunk.ok()) co_return chunk.status();
    if (chunk->empty()) {
      to.CloseWrite();
      co_return absl::OkStatus();
    }
    const size_t n = chunk->size();
    Status st = co_await to.Write(*chunk, {.scope = scope});
    if (!st.ok()) co_return st;
    from.Consume(n);
    if (moved != nullptr) *moved += n;
  }
}

io::Task<RelayTotals> RelayStreams(io::ByteStream& downstream, io::ByteStream& upstream,
                                   io::CancelScope* scope) {
  RelayTotals t;
  // The first failure cancels the other direction too (the scope is the
  // connection's).
  auto one = [scope](io::ByteStream& a, io::ByteStream& b, uint64_t* n) -> io::Task<Status> {
    Status st = co_await Pump(a, b, n, scope);
    if (!st.ok() && !scope->cancelled()) {
      a.Abort();
      b.Abort();
      scope->Cancel();
    }
    co_return st;
  };
  auto [up, down] = co_await io::WhenAll(one(downstream, upstream, &t.up),
                                         one(upstream, downstream, &t.down));
  t.status = !up.ok() ? up : down;
  co_return t;
}

io::Task<RelayTotals> RelayStreamsIdle(io::Loop& loop, io::ByteStream& downstream,
                                       io::ByteStream& upstream, io::CancelScope* scope,
                                       base::Duration idle) {
  RelayTotals t;
  base::MonoTime last = loop.Now();  // the last byte moved either way
  io::CancelScope timer_scope;
  auto one = [&](io::ByteStream& a, io::ByteStream& b, uint64_t* n) -> io::Task<Status> {
    for (;;) {
      auto chunk = co_await a.Peek({.scope = scope});
      if (!chunk.ok()) {
        if (!scope->cancelled()) {
          a.Abort();
          b.Abort();
          scope->Cancel();
        }
        co_return chunk.status();
      }
      if (chunk->empty()) {
        b.CloseWrite();
        co_return absl::OkStatus();
      }
      const size_t len = chunk->size();
      last = loop.Now();
      Status st = co_await b.Write(*chunk, {.scope = scope});
      if (!st.ok()) {
        if (!scope->cancelled()) {
          a.Abort();
          b.Abort();
          scope->Cancel();
        }
        co_return st;
      }
      a.Consume(len);
      *n += len;
      last = loop.Now();
    }
  };
  auto both = [&]() -> io::Task<std::pair<Status, Status>> {
    auto [up, down] = co_await io::WhenAll(one(downstream, upstream, &t.up),
                                           one(upstream, downstream, &t.down));
    timer_scope.Cancel();
    co_return std::pair<Status, Status>(up, down);
  };
  auto watch = [&]() -> io::Task<void> {
    for (;;) {
      Status slept = co_await loop.SleepUntil(last + idle, {.scope = &timer_scope});
      if (!slept.ok() || timer_scope.cancelled()) co_return;
      if (loop.Now() - last < idle) continue;  // bytes moved meanwhile
      t.idle_timed_out = true;
      downstream.Abort();
      upstream.Abort();
      scope->Cancel();
      co_return;
    }
  };
  auto [statuses, unused] = co_await io::WhenAll(both(), watch());
  (void)unused;
  t.status = !statuses.first.ok() ? statuses.first : statuses.second;
  if (t.idle_timed_out) t.status = absl::DeadlineExceededError("idle timeout");
  co_return t;
}

}  // namespace ambit::waypoint
