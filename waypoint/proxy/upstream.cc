#include "waypoint/proxy/upstream.h"

#include <fmt/format.h>

#include "common/base/error.h"
#include "common/base/log.h"
#include "common/hbone/connect_codec.h"
#include "common/http2/stream_transport.h"
#include "common/io/fd_stream.h"
#include "common/net/socket.h"
#include "common/telemetry/peer_labels.h"

namespace ambit::waypoint {

namespace {

using base::ErrorReason;

io::Task<StatusOr<net::Fd>> ConnectTcp(io::Loop& loop, const net::SocketAddress& to,
                                       base::Duration timeout, io::CancelScope* scope) {
  net::ClientOptions co;
  co.family = to.family();
  auto fd = net::CreateTcpClient(co);
  if (!fd.ok()) co_return base::WithReason(fd.status(), ErrorReason::kConnectFailed);
  (void)net::SetTcpNoDelay(fd->get(), true);
  (void)net::SetKeepalive(fd->get(), {});
  sockaddr_storage ss{};
  socklen_t len = to.ToSockaddr(&ss);
  Status st = co_await loop.Connect(fd->get(), reinterpret_cast<sockaddr*>(&ss), len,
                                    {.scope = scope, .timeout = timeout});
  if (!st.ok()) {
    (void)co_await loop.Close(fd->Release());
    ErrorReason reason = absl::IsDeadlineExceeded(st) ? ErrorReason::kConnectTimeout
                         : absl::IsCancelled(st)      ? ErrorReason::kCancelled
                                                      : ErrorReason::kConnectFailed;
    co_return base::WithReason(
        absl::Status(st.code(), fmt::format("connect to {}: {}", to.ToString(), std::string(st.message()))),
        reason);
  }
  co_return std::move(*fd);
}

}  // namespace

bool UpstreamConn::Alive() const {
  if (stream == nullptr) return false;
  if (tunnel == nullptr) return true;  // TCP: a dead one fails its first write/read
  return !tunnel->end_received() && !tunnel->conn().closed() && !tunnel->write_closed();
}

io::Task<StatusOr<UpstreamConn>> OpenStream(io::Loop& loop, hbone::HbonePool& pool,
                                            const WaypointState& state,
                                            const UpstreamEndpoint& ep,
                                            const UpstreamOptions& options,
                                            io::CancelScope* scope) {
  UpstreamConn out;
  out.endpoint = ep.Key();
  out.live_key = ep.LiveKey();
  if (state.sandwich || !ep.hbone) {
    // Plain TCP: in the sandwich form this pod's agent captures it (and knows
    // its source is the destination's waypoint, so it goes direct).
    auto fd = co_await ConnectTcp(loop, ep.address, options.connect_timeout, scope);
    if (!fd.ok()) co_return fd.status();
    out.stream = std::make_unique<io::FdStream>(loop, fd->Release());
    co_return out;
  }
  const net::SocketAddress next_hop(ep.address.ip(), mesh::kHbonePort);
  hbone::PoolKey key{state.identity, ep.identities, next_hop.ToString(), ""};
  std::shared_ptr<const tls::TlsContext> ctx = state.client_tls;
  std::vector<identity::Identity> expected;
  for (const auto& s : ep.identities) {
    if (auto id = identity::Identity::Parse(s); id.ok()) expected.push_back(*id);
  }
  hbone::ConnOptions conn_options = options.conn;
  base::Duration timeout = options.connect_timeout;
  io::Loop* lp = &loop;
  hbone::HbonePool::DialFn dial =
      [lp, next_hop, ctx, expected, conn_options, timeout,
       scope]() -> io::Task<StatusOr<std::shared_ptr<hbone::HboneConn>>> {
    auto fd = co_await ConnectTcp(*lp, next_hop, timeout, scope);
    if (!fd.ok()) co_return fd.status();
    co_return co_await hbone::Handshake(*lp, std::move(*fd), ctx, expected, conn_options);
  };
  auto authority = hbone::AuthorityFromIp(ep.address.ip().ToString(), ep.address.port());
  if (!authority.ok()) co_return authority.status();
  hbone::OutboundConnect req;
  req.target = *authority;
  req.source = telemetry::BaggageFor(state.self);
  auto headers = hbone::BuildConnectHeaders(req);
  if (!headers.ok()) co_return headers.status();
  auto stream = co_await pool.Connect(std::move(key), std::move(dial), ep.address.ToString(),
                                      std::move(*headers), timeout);
  if (!stream.ok()) co_return stream.status();
  out.tunnel = stream->get();
  out.stream = std::move(*stream);
  co_return out;
}

// ---- Http1Pool --------------------------------------------------------------

std::optional<UpstreamConn> Http1Pool::Take(const std::string& endpoint) {
  auto it = idle_.find(endpoint);
  if (it == idle_.end()) return std::nullopt;
  auto& v = it->second;
  while (!v.empty()) {
    UpstreamConn c = std::move(v.back());
    v.pop_back();
    if (c.Alive()) {
      if (v.empty()) idle_.erase(it);
      return c;
    }
  }
  idle_.erase(it);
  return std::nullopt;
}

void Http1Pool::Put(UpstreamConn conn) {
  if (!conn.Alive()) return;
  auto& v = idle_[conn.endpoint];
  if (v.size() >= options_.max_idle_per_endpoint) return;  // dropped: closes it
  conn.idle_since = loop_.Now();
  v.push_back(std::move(conn));
}

void Http1Pool::Prune(const std::set<std::string>& live) {
  std::erase_if(idle_, [&](const auto& kv) {
    return kv.second.empty() || live.count(kv.second.front().live_key) == 0;
  });
}

void Http1Pool::SweepIdle() {
  const base::MonoTime cutoff = loop_.Now() - options_.idle_timeout;
  for (auto it = idle_.begin(); it != idle_.end();) {
    std::erase_if(it->second,
                  [&](const UpstreamConn& c) { return !c.Alive() || c.idle_since < cutoff; });
    it = it->second.empty() ? idle_.erase(it) : std::next(it);
  }
}

size_t Http1Pool::idle() const {
  size_t n = 0;
  for (const auto& [k, v] : idle_) n += v.size();
  return n;
}

// ---- H2Pool -----------------------------------------------------------------

H2Pool::~H2Pool() { Shutdown(); }

io::Task<StatusOr<std::shared_ptr<http2::Session>>> H2Pool::Get(hbone::HbonePool& pool,
                                                                const WaypointState& state,
                                                                const UpstreamEndpoint& ep,
                                                                io::CancelScope* scope,
                                                                std::optional<base::Duration>
                                                                    connect_timeout) {
  const std::string key = ep.Key();
  if (auto it = sessions_.find(key); it != sessions_.end()) {
    auto& list = it->second.sessions;
    std::erase_if(list, [](const auto& s) { return s->closed() || s->draining(); });
    for (const auto& s : list) {
      if (s->Usable(kMaxStreamsPerSession)) co_return s;
    }
  }
  UpstreamOptions dial = options_;
  if (connect_timeout) dial.connect_timeout = *connect_timeout;
  auto up = co_await OpenStream(loop_, pool, state, ep, dial, scope);
  if (!up.ok()) co_return up.status();
  auto transport = http2::StreamTransport::Owning(std::move(up->stream), ep.address);
  auto session = http2::Session::Start(loop_, std::move(transport), http2::H2Role::kClient,
                                       options_.conn.session());
  if (!session.ok()) co_return base::WithReason(session.status(), ErrorReason::kH2Setup);
  Bucket& b = sessions_[key];  // looked up again: the map may have changed meanwhile
  b.live_key = ep.LiveKey();
  b.sessions.push_back(*session);
  co_return *session;
}

void H2Pool::Prune(const std::set<std::string>& live) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (live.count(it->second.live_key) != 0) {
      ++it;
      continue;
    }
    for (auto& s : it->second.sessions) s->Drain();
    it = sessions_.erase(it);
  }
}

void H2Pool::Shutdown() {
  for (auto& [k, b] : sessions_) {
    for (auto& s : b.sessions) s->Drain();
  }
  sessions_.clear();
}

size_t H2Pool::sessions() const {
  size_t n = 0;
  for (const auto& [k, b] : sessions_) n += b.sessions.size();
  return n;
}

}  // namespace ambit::waypoint
