#include "waypoint/proxy/mirror.h"

#include "common/base/ascii.h"
#include "common/base/log.h"
#include "common/http2/session_stream.h"
#include "waypoint/proxy/http1_exchange.h"
#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/upstream.h"
#include "waypoint/proxy/worker.h"

namespace ambit::waypoint {

namespace {

constexpr auto kMirrorTimeout = std::chrono::seconds(10);

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Envoy marks shadowed requests by their authority.
std::string Shadow(std::string_view authority) {
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos &&
      authority.find(':') == colon) {
    return std::string(authority.substr(0, colon)) + "-shadow" + std::string(authority.substr(colon));
  }
  return std::string(authority) + "-shadow";
}

// HTTP/1.1: head with the shadow Host and the body's length, then the body;
// the answer is read to its end so the stream can go back to the pool.
io::Task<Status> MirrorHttp1(Worker& w, const WaypointState& state, const UpstreamEndpoint& ep,
                             const MirrorCopy& copy, io::CancelScope* scope) {
  http1::Headers h = copy.headers;
  StripHopByHop(h);
  http1::RemoveHeader(h, "content-length");
  http1::SetHeader(h, "host", Shadow(copy.authority));
  if (!copy.body.empty() || copy.method == "POST" || copy.method == "PUT") {
    h.push_back({"content-length", std::to_string(copy.body.size())});
  }
  std::string out;
  http1::AppendRequestHead(out, copy.method, copy.target, h);
  out += copy.body;
  UpstreamConn up;
  if (auto pooled = w.http1_pool().Take(ep.Key())) {
    up = std::move(*pooled);
  } else {
    auto opened = co_await OpenStream(w.loop(), w.pool(), state, ep, w.options().upstream, scope);
    if (!opened.ok()) co_return opened.status();
    up = std::move(*opened);
  }
  Status st = co_await up.stream->Write(Bytes(out), {.scope = scope, .timeout = kMirrorTimeout});
  if (!st.ok()) co_return st;
  http1::Parser p(http1::Kind::kResponse);
  p.SetRequestMethod(copy.method);
  bool keep = false;
  for (;;) {
    Fed f = co_await NextEvent(*up.stream, p, {.scope = scope, .timeout = kMirrorTimeout});
    if (!f.error.ok()) co_return f.error;
    if (f.result.event == http1::Parser::Event::kHead) {
      http1::ResponseHead head = p.TakeResponse();
      keep = head.keep_alive && head.status >= 200;
    }
    up.stream->Consume(f.result.consumed);
    if (f.result.event == http1::Parser::Event::kComplete && !p.mid_message()) break;
    if (f.result.event == http1::Parser::Event::kError || f.eof) {
      co_return absl::UnavailableError("mirror response ended early");
    }
  }
  if (keep) w.http1_pool().Put(std::move(up));
  co_return absl::OkStatus();
}

// HTTP/2: one stream on a pooled h2c session; the answer is drained.
io::Task<Status> MirrorHttp2(Worker& w, const WaypointState& state, const UpstreamEndpoint& ep,
                             const MirrorCopy& copy, io::CancelScope* scope) {
  http2::H2Headers h = copy.h2_headers;
  for (auto& x : h) {
    if (x.name == ":authority") x.value = Shadow(x.value);
  }
  auto session = co_await w.h2_pool().Get(w.pool(), state, ep, scope);
  if (!session.ok()) co_return session.status();
  auto stream = (*session)->OpenRequest(h, copy.body.empty());
  if (!stream.ok()) co_return stream.status();
  http2::SessionStream& s = **stream;
  if (!copy.body.empty()) {
    Status st = co_await s.Write(Bytes(copy.body), {.scope = scope, .timeout = kMirrorTimeout});
    if (!st.ok()) co_return st;
    s.CloseWrite();
  }
  auto headers = co_await s.AwaitHeaders({.scope = scope, .timeout = kMirrorTimeout});
  if (!headers.ok()) co_return headers.status();
  for (;;) {
    auto chunk = co_await s.Peek({.scope = scope, .timeout = kMirrorTimeout});
    if (!chunk.ok()) co_return chunk.status();
    if (chunk->empty()) break;
    s.Consume(chunk->size());
  }
  co_return absl::OkStatus();
}

io::Task<void> MirrorOne(Downstream d, const route::Mirror* m,
                         std::shared_ptr<const MirrorCopy> copy) {
  Worker& w = d.worker;
  io::CancelScope scope;
  const route::RouteConfig& cfg = *d.state->routes;
  auto info = cfg.clusters.find(m->cluster.name);
  const mesh::Service* svc = d.state->snapshot->FindServiceByKey(m->cluster.service);
  EndpointPtr ep;
  if (info != cfg.clusters.end() && svc != nullptr) {
    ep = w.picker().PickInCluster(d.state->snapshot, m->cluster.name, *svc, m->cluster.port,
                                  info->second.subset_labels, d.state->self,
                                  {.policy = cfg.PolicyFor(m->cluster.name)});
  }
  if (ep == nullptr) {
    w.CountRoute("mirror_failed");
    co_return;
  }
  Status st = copy->h2 ? co_await MirrorHttp2(w, *d.state, *ep, *copy, &scope)
                       : co_await MirrorHttp1(w, *d.state, *ep, *copy, &scope);
  if (st.ok()) {
    w.CountRoute("mirror_sent");
  } else {
    w.CountRoute("mirror_failed");
    AMBIT_LOG(kDebug, "waypoint", "mirror to {} ({}) failed: {}", m->cluster.name,
              ep->address.ToString(), st.ToString());
  }
}

}  // namespace

std::vector<const route::Mirror*> ChooseMirrors(const Downstream& d, const route::Route* r) {
  std::vector<const route::Mirror*> out;
  if (r == nullptr) return out;
  for (const route::Mirror& m : r->mirrors) {
    if (m.unresolved) {
      d.worker.CountRoute("mirror_failed");
      continue;
    }
    if (m.per_million >= 1'000'000 || d.worker.Random() % 1'000'000 < m.per_million) {
      out.push_back(&m);
    }
  }
  return out;
}

void SendMirrors(const Downstream& d, const std::vector<const route::Mirror*>& mirrors,
                 std::shared_ptr<const MirrorCopy> copy) {
  Downstream detached = d;
  detached.scope = nullptr;  // mirrors outlive the request (and maybe the connection)
  for (const route::Mirror* m : mirrors) d.worker.SpawnCounted(MirrorOne(detached, m, copy));
}

}  // namespace ambit::waypoint
