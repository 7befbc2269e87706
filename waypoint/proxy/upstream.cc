#include "waypoint/proxy/upstream.h"

#include <fmt/format.h>

#include "common/base/error.h"
#include "common/base/log.h"
#include "common/http2/session_stream.h"
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

bool Http1Pool::Expired(const UpstreamConn& c, base::MonoTime now) const {
  const base::Duration t =
      c.idle_timeout > base::Duration::zero() ? c.idle_timeout : options_.idle_timeout;
  return now - c.idle_since >= t;
}

void Http1Pool::CountIdle(const UpstreamConn& c) const {
  if (on_idle_close_) on_idle_close_(c.cluster);
}

std::optional<UpstreamConn> Http1Pool::Take(const std::string& endpoint) {
  auto it = idle_.find(endpoint);
  if (it == idle_.end()) return std::nullopt;
  auto& v = it->second;
  const base::MonoTime now = loop_.Now();
  while (!v.empty()) {
    UpstreamConn c = std::move(v.back());
    v.pop_back();
    if (!c.Alive()) continue;
    if (Expired(c, now)) {  // past its idle timeout: closed, not reused
      CountIdle(c);
      continue;
    }
    if (v.empty()) idle_.erase(it);
    return c;
  }
  idle_.erase(it);
  return std::nullopt;
}

void Http1Pool::Put(UpstreamConn conn) {
  if (!conn.Alive() || !conn.poolable) return;
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
  const base::MonoTime now = loop_.Now();
  for (auto it = idle_.begin(); it != idle_.end();) {
    std::erase_if(it->second, [&](const UpstreamConn& c) {
      if (!c.Alive()) return true;
      if (!Expired(c, now)) return false;
      CountIdle(c);
      return true;
    });
    it = it->second.empty() ? idle_.erase(it) : std::next(it);
  }
}

size_t Http1Pool::idle() const {
  size_t n = 0;
  for (const auto& [k, v] : idle_) n += v.size();
  return n;
}

// ---- H2Pool -----------------------------------------------------------------

namespace {

// A connection slot an open h2 session holds; given back when the session
// closes (or is destroyed without closing).
struct SessionSlot {
  std::shared_ptr<BreakerCounters> counters;
  ~SessionSlot() {
    if (counters) counters->ReleaseConnection();
  }
};

}  // namespace

H2Limits H2LimitsFor(const ClusterRuntime* rt, const std::string& cluster) {
  H2Limits l;
  l.cluster = cluster;
  if (rt == nullptr) return l;
  const route::ConnectionPoolPolicy& p = rt->pool;
  l.connect_timeout = p.connect_timeout;
  l.max_streams = p.max_concurrent_streams;
  l.max_per_session = p.max_requests_per_connection;
  if (p.http_idle_timeout) {
    l.idle_timeout = std::chrono::duration_cast<base::Duration>(*p.http_idle_timeout);
  }
  l.pool = &p;
  l.breaker = rt->counters.get();
  l.breaker_owner = rt->counters;
  return l;
}

H2Pool::~H2Pool() { Shutdown(); }

bool H2Pool::IdleExpired(const Entry& e, base::MonoTime now) const {
  const base::Duration t =
      e.idle_timeout > base::Duration::zero() ? e.idle_timeout : options_.idle_timeout;
  return e.session->active_streams() == 0 && now - e.session->last_used() >= t;
}

H2Pool::Entry* H2Pool::FindUsable(const std::string& key, const H2Limits& limits) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return nullptr;
  auto& list = it->second.sessions;
  const base::MonoTime now = loop_.Now();
  std::erase_if(list, [&](const Entry& e) {
    if (e.session->closed() || e.session->draining()) return true;
    if (!IdleExpired(e, now)) return false;
    e.session->Drain();  // idle past its timeout: closed, never reused
    if (on_idle_close_) on_idle_close_(e.cluster);
    return true;
  });
  const size_t max = limits.max_streams > 0 ? limits.max_streams : kMaxStreamsPerSession;
  for (auto& e : list) {
    if (e.session->Usable(max)) return &e;
  }
  return nullptr;
}

io::Task<StatusOr<std::shared_ptr<http2::Session>>> H2Pool::Get(hbone::HbonePool& pool,
                                                                const WaypointState& state,
                                                                const UpstreamEndpoint& ep,
                                                                io::CancelScope* scope,
                                                                const H2Limits& limits) {
  const std::string key = ep.Key();
  DrainRetired();
  const size_t max = limits.max_streams > 0 ? limits.max_streams : kMaxStreamsPerSession;
  for (;;) {
    if (Entry* e = FindUsable(key, limits)) co_return e->session;
    // A session being dialled to the endpoint with room for this stream:
    // wait for it instead of dialling another (a burst of requests would
    // otherwise open one session each).
    std::shared_ptr<Dialing> join;
    for (auto& dl : dialing_[key]) {
      if (dl->reserved < max) {
        join = dl;
        break;
      }
    }
    if (join == nullptr) break;
    ++join->reserved;
    Status woke = co_await join->done.Wait({.scope = scope});
    if (!woke.ok()) co_return woke;
    if (!join->status.ok()) co_return join->status;
    if (join->session != nullptr && join->session->Usable(max)) co_return join->session;
    // Full or gone meanwhile: look again.
  }
  // No session can take the stream: a new one needs a connection slot
  // (maxConnections); without one the request waits as pending, polling
  // for a stream freed on this worker's sessions or a slot freed anywhere.
  std::shared_ptr<SessionSlot> slot;
  if (limits.breaker != nullptr && limits.pool != nullptr) {
    BreakerCounters& c = *limits.breaker;
    if (!TryConnection(c, *limits.pool)) {
      if (!TryPending(c, *limits.pool)) {
        if (c.pending_overflow != nullptr) c.pending_overflow->Inc();
        co_return base::WithReason(absl::ResourceExhaustedError("upstream overflow"),
                                   ErrorReason::kOverflow);
      }
      const base::MonoTime until =
          loop_.Now() + limits.connect_timeout.value_or(std::chrono::seconds(10));
      bool got = false;
      std::shared_ptr<http2::Session> reuse;
      while (!got && reuse == nullptr && loop_.Now() < until) {
        const base::Duration left = until - loop_.Now();
        Status slept = co_await loop_.Sleep(std::min<base::Duration>(left, std::chrono::milliseconds(5)),
                                            {.scope = scope});
        if (!slept.ok()) break;
        if (Entry* e = FindUsable(key, limits)) reuse = e->session;
        else got = TryConnection(c, *limits.pool);
      }
      GivePending(c);
      if (reuse != nullptr) co_return reuse;
      if (!got) {
        if (c.pending_overflow != nullptr) c.pending_overflow->Inc();
        co_return base::WithReason(absl::ResourceExhaustedError("upstream overflow"),
                                   ErrorReason::kOverflow);
      }
    }
    slot = std::make_shared<SessionSlot>();
    slot->counters = limits.breaker_owner;
  }
  auto dialing = std::make_shared<Dialing>(loop_);
  dialing_[key].push_back(dialing);
  auto session = co_await Dial(pool, state, ep, limits, scope, std::move(slot));
  auto& list = dialing_[key];  // looked up again: the map may have changed meanwhile
  std::erase(list, dialing);
  if (list.empty()) dialing_.erase(key);
  dialing->status = session.ok() ? Status() : session.status();
  if (session.ok()) dialing->session = *session;
  dialing->done.Set();
  co_return session;
}

io::Task<StatusOr<std::shared_ptr<http2::Session>>> H2Pool::Dial(
    hbone::HbonePool& pool, const WaypointState& state, const UpstreamEndpoint& ep,
    const H2Limits& limits, io::CancelScope* scope, std::shared_ptr<void> slot) {
  UpstreamOptions dial = options_;
  if (limits.connect_timeout) dial.connect_timeout = *limits.connect_timeout;
  auto up = co_await OpenStream(loop_, pool, state, ep, dial, scope);
  if (!up.ok()) co_return up.status();  // `slot` goes: the connection slot with it
  auto transport = http2::StreamTransport::Owning(std::move(up->stream), ep.address);
  auto session = http2::Session::Start(loop_, std::move(transport), http2::H2Role::kClient,
                                       options_.conn.session());
  if (!session.ok()) co_return base::WithReason(session.status(), ErrorReason::kH2Setup);
  if (slot != nullptr) (*session)->SetOnClosed([slot](http2::Session*) mutable { slot.reset(); });
  Bucket& b = sessions_[ep.Key()];
  b.live_key = ep.LiveKey();
  b.sessions.push_back(Entry{*session, 0, limits.cluster, limits.idle_timeout});
  co_return *session;
}

void H2Pool::DrainRetired() {
  std::erase_if(retired_, [](const std::shared_ptr<http2::Session>& s) {
    if (s->closed()) return true;
    if (s->active_streams() > 0) return false;
    s->Drain();
    return true;
  });
}

io::Task<StatusOr<std::unique_ptr<http2::SessionStream>>> H2Pool::OpenRequest(
    hbone::HbonePool& pool, const WaypointState& state, const UpstreamEndpoint& ep,
    const http2::H2Headers& headers, bool end_stream, io::CancelScope* scope,
    const H2Limits& limits) {
  Status failure;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto session = co_await Get(pool, state, ep, scope, limits);
    if (!session.ok()) co_return session.status();
    auto opened = (*session)->OpenRequest(headers, end_stream);
    if (!opened.ok()) {
      failure = opened.status();  // a session that just went away: once more
      continue;
    }
    // maxRequestsPerConnection: the session that reached it takes no more
    // streams and closes once its streams are done.
    if (limits.max_per_session > 0) {
      auto it = sessions_.find(ep.Key());
      if (it != sessions_.end()) {
        auto& list = it->second.sessions;
        for (auto e = list.begin(); e != list.end(); ++e) {
          if (e->session != *session) continue;
          if (++e->opened >= limits.max_per_session) {
            // No new streams; it closes once this one (and any other) ended
            // (a GOAWAY now could refuse the stream just opened).
            retired_.push_back(*session);
            list.erase(e);
          }
          break;
        }
      }
    }
    co_return std::move(*opened);
  }
  co_return failure;
}

void H2Pool::Prune(const std::set<std::string>& live) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (live.count(it->second.live_key) != 0) {
      ++it;
      continue;
    }
    for (auto& e : it->second.sessions) e.session->Drain();
    it = sessions_.erase(it);
  }
}

void H2Pool::SweepIdle() {
  DrainRetired();
  const base::MonoTime now = loop_.Now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    std::erase_if(it->second.sessions, [&](const Entry& e) {
      if (e.session->closed() || e.session->draining()) return true;
      if (!IdleExpired(e, now)) return false;
      e.session->Drain();  // no stream: closes at once
      if (on_idle_close_) on_idle_close_(e.cluster);
      return true;
    });
    it = it->second.sessions.empty() ? sessions_.erase(it) : std::next(it);
  }
}

void H2Pool::Shutdown() {
  for (auto& [k, b] : sessions_) {
    for (auto& e : b.sessions) e.session->Drain();
  }
  sessions_.clear();
  for (auto& s : retired_) s->Drain();
  retired_.clear();
}

size_t H2Pool::sessions() const {
  size_t n = 0;
  for (const auto& [k, b] : sessions_) n += b.sessions.size();
  return n;
}

}  // namespace ambit::waypoint
