// HTTP/2 downstream (prior knowledge h2c inside the tunnel, gRPC included):
// one server session over the downstream stream; each request stream is
// routed on its own to an endpoint chosen per request and sent as a stream
// of a pooled upstream h2c session (the upstream protocol follows the
// downstream one). Headers, body and trailers are relayed as they come, so
// gRPC streaming and trailers-only responses pass unchanged.
#include <fmt/format.h>

#include "common/base/ascii.h"
#include "common/base/error.h"
#include "common/base/log.h"
#include "common/http2/session_stream.h"
#include "common/http2/stream_transport.h"
#include "common/io/event.h"
#include "waypoint/proxy/circuit_breaker.h"
#include "waypoint/proxy/downstream.h"
#include "waypoint/proxy/filters.h"
#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/mirror.h"
#include "waypoint/proxy/retry.h"
#include "waypoint/proxy/router.h"
#include "waypoint/proxy/access_log.h"
#include "waypoint/proxy/tracing.h"
#include "waypoint/proxy/worker.h"

namespace ambit::waypoint {

namespace {

using http2::H2Headers;
using http2::SessionStream;

// The downstream stream lent to the session's transport; its destruction
// (the session released its transport) tells ServeHttp2 the carrier is free.
class LentStream final : public io::ByteStream {
 public:
  LentStream(io::ByteStream& inner, std::shared_ptr<io::Event> gone)
      : inner_(inner), gone_(std::move(gone)) {}
  ~LentStream() override { gone_->Set(); }
  io::Task<StatusOr<std::span<const std::byte>>> Peek(io::OpOptions o) override {
    return inner_.Peek(o);
  }
  void Consume(size_t n) override { inner_.Consume(n); }
  io::Task<Status> Write(std::span<const std::byte> b, io::OpOptions o) override {
    return inner_.Write(b, o);
  }
  void CloseWrite() override { inner_.CloseWrite(); }
  void Abort() override { inner_.Abort(); }

 private:
  io::ByteStream& inner_;
  std::shared_ptr<io::Event> gone_;
};

// Request headers toward the upstream: pseudo headers first, then the
// rest without connection-specific ones (RFC 9113 §8.2.2).
H2Headers UpstreamHeaders(const H2Headers& in, const Downstream& d, RequestInfo& info) {
  H2Headers out;
  for (const auto& h : in) {
    if (!h.name.empty() && h.name[0] == ':') out.push_back(h);
  }
  for (const auto& h : in) {
    if (h.name.empty() || h.name[0] == ':') continue;
    if (IsHopByHop(h.name) && !(h.name == "te" && h.value == "trailers")) continue;
    out.push_back(h);
  }
  info.request_id = AddProxyHeaders(out, d.peer.ip().ToString());
  return out;
}

void SetPseudo(H2Headers& h, std::string_view name, std::string value) {
  for (auto& x : h) {
    if (x.name == name) {
      x.value = std::move(value);
      return;
    }
  }
  h.insert(h.begin(), {std::string(name), std::move(value)});
}

H2Headers ResponseHeadersOf(const H2Headers& in) {
  H2Headers out;
  for (const auto& h : in) {
    if (h.name == ":status" || IsHopByHop(h.name)) continue;
    out.push_back(h);
  }
  return out;
}

// A local reply on a downstream stream: plain HTTP, or gRPC's trailers-only
// form (HTTP 200, grpc-status) for gRPC requests, as Envoy answers.
io::Task<void> SendLocal(SessionStream& ds, RequestInfo& info, const LocalReply& r,
                         io::CancelScope* scope) {
  info.response_flags = r.flag;
  info.details = r.details;
  if (info.grpc) {
    info.response_code = 200;
    info.grpc_status = std::to_string(r.grpc_status);
    H2Headers h = {{"content-type", "application/grpc"}, {"grpc-status", info.grpc_status}};
    if (!r.body.empty()) h.push_back({"grpc-message", r.body});
    for (const auto& [k, v] : r.headers) h.push_back({k, v});
    (void)ds.Respond(200, std::move(h), true);
    co_return;
  }
  info.response_code = r.status;
  info.bytes_sent = r.body.size();
  H2Headers h = {{"content-length", std::to_string(r.body.size())}};
  if (!r.content_type.empty() && !r.body.empty()) h.push_back({"content-type", r.content_type});
  for (const auto& [k, v] : r.headers) h.push_back({k, v});
  if (r.body.empty()) {
    (void)ds.Respond(r.status, std::move(h), true);
    co_return;
  }
  if (!ds.Respond(r.status, std::move(h), false).ok()) co_return;
  (void)co_await ds.Write(std::as_bytes(std::span(r.body.data(), r.body.size())), {.scope = scope});
  ds.CloseWrite();
}

// A bounded copy of a body as it is forwarded (a mirror's, a retry's).
struct BodyTee {
  std::string* buf = nullptr;  // null: no copy
  size_t limit = 0;
  bool overflow = false;       // the body outgrew `limit` (the copy is dropped)
  void Add(std::span<const std::byte> b) {
    if (buf == nullptr || overflow) return;
    if (buf->size() + b.size() > limit) {
      overflow = true;
      buf->clear();
      return;
    }
    buf->append(reinterpret_cast<const char*>(b.data()), b.size());
  }
};

// Copies the body (and trailers) of `from` onto `to`, each chunk also into
// the tees once it was written and consumed (so a cancelled write leaves
// the copies and `from` in step: a retry resumes where the copy ends).
// *from_failed tells a failure of `from` from one of `to`.
io::Task<Status> PumpBody(SessionStream& from, SessionStream& to, uint64_t* bytes,
                          io::CancelScope* scope, BodyTee* tee_a = nullptr,
                          BodyTee* tee_b = nullptr, bool* from_failed = nullptr) {
  for (;;) {
    auto chunk = co_await from.Peek({.scope = scope});
    if (!chunk.ok()) {
      if (from_failed != nullptr) *from_failed = !scope->cancelled();
      co_return chunk.status();
    }
    if (chunk->empty()) {
      if (from.trailers().has_value()) co_return to.SendTrailers(*from.trailers());
      to.CloseWrite();
      co_return absl::OkStatus();
    }
    const size_t n = chunk->size();
    Status st = co_await to.Write(*chunk, {.scope = scope});
    if (!st.ok()) co_return st;
    if (tee_a != nullptr) tee_a->Add(*chunk);
    if (tee_b != nullptr) tee_b->Add(*chunk);
    from.Consume(n);
    *bytes += n;
  }
}

// Answers a request stream locally, accounts it and waits for the stream
// to close (bounded).
io::Task<void> AnswerLocal(Worker& w, SessionStream& ds, RequestInfo& info, const LocalReply& r,
                           io::CancelScope* scope) {
  co_await SendLocal(ds, info, r, scope);
  w.requests().Record(w.index(), info, w.loop().Now());
  (void)co_await ds.AwaitClosed({.timeout = std::chrono::seconds(5)});
}

io::Task<void> ServeH2Request(Downstream d, std::unique_ptr<SessionStream> ds, H2Headers headers) {
  Worker& w = d.worker;
  io::CancelScope scope;
  RequestInfo info = d.NewRequest(w.loop().Now());
  info.protocol = "HTTP/2";
  auto get = [&](std::string_view n) {
    const std::string* v = http2::FindHeader(headers, n);
    return v != nullptr ? *v : std::string();
  };
  info.method = get(":method");
  info.path = get(":path");
  info.authority = get(":authority");
  info.user_agent = get("user-agent");
  info.grpc = base::StartsWithIgnoreCase(get("content-type"), "application/grpc");
  ClusterGuard guard;  // circuit-breaker slots and the outlier report (below)
  auto finish = [&] {
    guard.Finish();
    w.requests().Record(w.index(), info, w.loop().Now());
  };

  // The route step: a local answer, or the cluster and the request edits.
  const RouteResult rr =
      RouteHeaders(d, info.method, info.path, info.authority, headers, w.Random());
  NoteRoute(d, rr, info);
  StartTrace(d, info, headers);
  CaptureLogHeaders(info, headers);
  // Request filters (authorization, rate limits), then fault injection
  // (before the route's action, like Envoy's fault filter).
  const HeaderView<H2Headers> filter_headers(headers);
  FilterVerdict verdict = co_await RunRequestFilters(
      d, rr, {.method = info.method, .path = info.path, .authority = info.authority,
              .headers = &filter_headers, .grpc = info.grpc},
      info, &scope);
  if (verdict.reply) {
    LocalReply reply = std::move(*verdict.reply);
    for (const auto& kv : verdict.response_headers.set) reply.headers.push_back(kv);
    for (const auto& kv : verdict.response_headers.add) reply.headers.push_back(kv);
    co_await SendLocal(*ds, info, reply, &scope);
    finish();
    (void)co_await ds->AwaitClosed({.timeout = std::chrono::seconds(5)});
    co_return;
  }
  const FaultDecision fault = DecideFault(d, rr);
  if (fault.delay.count() > 0) {
    (void)co_await w.loop().Sleep(fault.delay, {.scope = &scope});
    info.response_flags = "DI";
  }
  if (fault.abort) {
    const LocalReply reply = *fault.abort;
    co_await SendLocal(*ds, info, reply, &scope);
    finish();
    (void)co_await ds->AwaitClosed({.timeout = std::chrono::seconds(5)});
    co_return;
  }
  if (rr.kind == RouteResult::Kind::kLocal) {
    const LocalReply reply = rr.reply;
    co_await SendLocal(*ds, info, reply, &scope);
    finish();
    (void)co_await ds->AwaitClosed({.timeout = std::chrono::seconds(5)});
    co_return;
  }
  // Circuit breaking (DestinationRule connectionPool): past a limit, 503 UO
  // at once.
  guard = co_await AdmitRequest(ClusterRuntimeFor(d, rr), false, &info, w.loop(), &scope);
  if (guard.overflow()) {
    const LocalReply reply = ClusterGuard::OverflowReply();
    co_await SendLocal(*ds, info, reply, &scope);
    finish();
    (void)co_await ds->AwaitClosed({.timeout = std::chrono::seconds(5)});
    co_return;
  }
  std::vector<const route::HeaderOps*> response_ops;
  if (rr.route != nullptr) {
    ApplyHeaderOps(rr.route->request_headers, headers);
    ApplyHeaderOps(rr.cluster->request_headers, headers);
    RewrittenTarget t = RewriteRequest(rr, info.path);
    SetPseudo(headers, ":path", t.path);
    if (!t.authority.empty()) SetPseudo(headers, ":authority", t.authority);
    response_ops = {&rr.route->response_headers, &rr.cluster->response_headers};
  }
  if (!verdict.response_headers.empty()) response_ops.push_back(&verdict.response_headers);
  if (!rr.lb_response_headers.empty()) response_ops.push_back(&rr.lb_response_headers);
  StampTrace(info, headers);
  H2Headers up_headers = UpstreamHeaders(headers, d, info);
  // Mirrors get the request as edited; a body is copied while forwarded.
  std::vector<const route::Mirror*> mirrors = ChooseMirrors(d, rr.route);
  std::shared_ptr<MirrorCopy> copy;
  if (!mirrors.empty()) {
    copy = std::make_shared<MirrorCopy>();
    copy->h2 = true;
    copy->h2_headers = up_headers;
    if (ds->end_received() && ds->bytes_received() == 0) {
      SendMirrors(d, mirrors, copy);
      mirrors.clear();
    }
  }

  // The try loop (retry.h): a try that fails in a way the route's retry
  // policy covers — no connection, a reset or refused stream, a per-try
  // timeout, a retriable response head (held back, never forwarded) — is
  // tried again after a backoff, on another endpoint when there is one,
  // with the body kept so far sent first.
  RetryState retry = RetryStateFor(rr, info.start);
  std::string replay;
  BodyTee replay_tee{.buf = retry.may_retry() ? &replay : nullptr, .limit = kMaxRetryBody};
  BodyTee mirror_tee{.buf = copy != nullptr ? &copy->body : nullptr, .limit = kMaxMirrorBody};
  const std::string cluster = RequestCluster(info);
  std::string avoid;
  for (;;) {
    auto ep = PickRoutedEndpoint(d, rr, avoid, retry.ExcludedPriorities());
    if (!ep) {
      const LocalReply reply = NoHealthyUpstream();  // named: see http1_proxy.cc Reply
      co_return co_await AnswerLocal(w, *ds, info, reply, &scope);
    }
    retry.StartTry();
    retry.NotePriority(w.picker().LastPriority());
    StampTraceTry(info, retry.tries(), up_headers);
    info.attempts = retry.tries();
    info.upstream_host = ep->address.ToString();
    info.upstream_workload = ep->workload;
    TryResult failed;
    LocalReply failure;
    bool try_failed = false, held = false, limit_hit = false, body_too_large = false;
    int held_status = 0;
    // A stream on a pooled session, under the cluster's connectionPool
    // (maxConcurrentStreams, maxConnections, pending, per-session limits).
    auto opened = co_await w.h2_pool().OpenRequest(w.pool(), *d.state, *ep, up_headers, false,
                                                   &scope, H2LimitsFor(guard.runtime(), cluster));
    std::unique_ptr<SessionStream> us = opened.ok() ? std::move(*opened) : nullptr;
    const Status open_failure = opened.ok() ? Status() : opened.status();
    bool downstream_failed = false, timed_out = false;
    if (us == nullptr && base::ReasonOf(open_failure) == base::ErrorReason::kOverflow) {
      const LocalReply reply = ClusterGuard::OverflowReply();  // 503 UO, not retried
      co_return co_await AnswerLocal(w, *ds, info, reply, &scope);
    }
    if (us == nullptr) {
      try_failed = true;
      failed.outcome = TryOutcome::kConnectFailure;
      failure = UpstreamConnectFailure(open_failure);
    } else {
      io::CancelScope try_scope, timer_scope;
      // Request body (and trailers) up while the response comes down; a
      // retry sends the kept part first.
      auto request = [&]() -> io::Task<Status> {
        if (!replay.empty()) {
          Status st = co_await us->Write(std::as_bytes(std::span(replay.data(), replay.size())),
                                         {.scope = &try_scope});
          if (!st.ok()) co_return st;
        }
        Status st = co_await PumpBody(*ds, *us, &info.bytes_received, &try_scope, &replay_tee,
                                      mirrors.empty() ? nullptr : &mirror_tee,
                                      &downstream_failed);
        if (!st.ok() && !try_scope.cancelled()) us->Reset(http2::kH2Cancel);
        if (!mirrors.empty()) {
          if (st.ok() && !mirror_tee.overflow) {
            SendMirrors(d, mirrors, copy);
            mirrors.clear();
          } else if (mirror_tee.overflow) {
            w.CountRoute("mirror_skipped_body");
            mirrors.clear();
          }
        }
        co_return st;
      };
      auto response = [&]() -> io::Task<Status> {
        auto h = co_await us->AwaitHeaders({.scope = &try_scope});
        if (!h.ok()) {
          if (try_scope.cancelled() || downstream_failed) co_return h.status();
          const bool refused = base::ReasonOf(h.status()) == base::ErrorReason::kStreamRefused;
          try_failed = true;
          failed.outcome = refused ? TryOutcome::kRefusedStream : TryOutcome::kReset;
          failure = refused ? UpstreamConnectFailure(h.status())
                            : UpstreamResetBeforeHeaders(h.status());
          try_scope.Cancel();  // the request side stops too
          co_return h.status();
        }
        const std::string* status = http2::FindHeader(*h, ":status");
        const int code = status != nullptr ? std::atoi(status->c_str()) : 0;
        const std::string* grpc = http2::FindHeader(*h, "grpc-status");
        TryResult t{.outcome = TryOutcome::kResponse, .status = code,
                    .grpc_status = ParseGrpcStatus(grpc),
                    .rate_limited = http2::FindHeader(*h, "x-envoy-ratelimited") != nullptr};
        auto decision = retry.Decide(t, !replay_tee.overflow);
        // DestinationRule maxRetries: without a retry slot this response stands.
        guard.ReleaseRetry();
        if (decision == RetryState::Decision::kRetry && !guard.TryAcquireRetry()) {
          decision = RetryState::Decision::kNotRetriable;
        }
        if (decision == RetryState::Decision::kRetry) {
          held_status = code;
          held = true;  // not forwarded: tried again
          us->Reset(http2::kH2Cancel);
          try_scope.Cancel();
          co_return absl::OkStatus();
        }
        limit_hit = decision == RetryState::Decision::kLimitExceeded;
        body_too_large = decision == RetryState::Decision::kNotReplayable;
        info.response_code = code;
        if (grpc != nullptr) info.grpc_status = *grpc;
        // A response that ended with its headers (gRPC trailers-only) ends the
        // same way downstream.
        // (Only when no body byte came: HEADERS, DATA and END_STREAM may all be
        // in by the time this resumes, and the body must not be dropped.)
        const bool ended =
            us->end_received() && !us->trailers().has_value() && us->bytes_received() == 0;
        H2Headers down_headers = ResponseHeadersOf(*h);
        for (const route::HeaderOps* ops : response_ops) ApplyHeaderOps(*ops, down_headers);
        Status st = ds->Respond(info.response_code, std::move(down_headers), ended);
        if (!st.ok() || ended) co_return st;
        st = co_await PumpBody(*us, *ds, &info.bytes_sent, &try_scope);
        if (const auto& tr = us->trailers(); tr.has_value()) {
          if (const std::string* g = http2::FindHeader(*tr, "grpc-status")) info.grpc_status = *g;
        }
        if (!st.ok() && !try_scope.cancelled()) {
          info.response_flags = std::string(flags::kUpstreamReset);
          info.details = std::string(st.message());
          ds->Reset(http2::kH2InternalError);
        }
        co_return st;
      };
      // The try's deadline (the route's timeout, or the per-try one when it
      // ends first) cancels both directions.
      const std::optional<base::MonoTime> deadline = retry.TryDeadline(w.loop().Now());
      auto exchange = [&]() -> io::Task<std::pair<Status, Status>> {
        auto [a, b] = co_await io::WhenAll(request(), response());
        timer_scope.Cancel();
        co_return std::pair<Status, Status>(a, b);
      };
      auto timer = [&]() -> io::Task<void> {
        if (!deadline) co_return;
        Status slept = co_await w.loop().SleepUntil(*deadline, {.scope = &timer_scope});
        if (slept.ok() && !timer_scope.cancelled()) {
          timed_out = true;
          try_scope.Cancel();
        }
      };
      auto [statuses, unused] = co_await io::WhenAll(exchange(), timer());
      (void)unused;
      auto [req_st, resp_st] = statuses;
      if (timed_out && !held) {
        us->Reset(http2::kH2Cancel);
        if (info.response_code != 0) {  // mid-response: the client sees a reset stream
          info.response_flags = std::string(flags::kUpstreamTimeout);
          info.details = "upstream_response_timeout";
          ds->Reset(http2::kH2Cancel);
          finish();
          (void)co_await ds->AwaitClosed({.timeout = std::chrono::seconds(5)});
          co_return;
        }
        if (retry.OverallExpired(w.loop().Now())) {
          if (retry.tries() > 1) w.CountRetry(cluster, retry_event::kTimeout);
          const LocalReply reply = UpstreamTimeout();
          io::CancelScope reply_scope;
          co_return co_await AnswerLocal(w, *ds, info, reply, &reply_scope);
        }
        try_failed = true;
        failed.outcome = TryOutcome::kPerTryTimeout;
        failure = UpstreamTimeout();
      } else if (downstream_failed && info.response_code == 0) {
        info.response_flags = std::string(flags::kDownstreamReset);
        us->Reset(http2::kH2Cancel);
        finish();
        (void)co_await ds->AwaitClosed({.timeout = std::chrono::seconds(5)});
        co_return;
      } else if (!held && !try_failed) {
        // The response went downstream (a request side failing after it
        // finished is benign).
        if (!req_st.ok() && info.response_code == 0) {
          info.response_flags = std::string(flags::kDownstreamReset);
          us->Reset(http2::kH2Cancel);
        }
        (void)resp_st;
        if (limit_hit) {
          AddResponseFlag(info, flags::kRetryLimitExceeded);
          w.CountRetry(cluster, retry_event::kLimitExceeded);
        } else if (body_too_large) {
          w.CountRetry(cluster, retry_event::kBodyTooLarge);
        } else if (retry.tries() > 1) {
          w.CountRetry(cluster, retry_event::kSuccess);
        }
        finish();
        (void)co_await ds->AwaitClosed({.timeout = std::chrono::seconds(5)});
        co_return;
      }
    }
    // The try failed (or its response was held back): again, or answer.
    RetryState::Decision decision =
        held ? RetryState::Decision::kRetry : retry.Decide(failed, !replay_tee.overflow);
    if (!held) {
      // DestinationRule maxRetries: without a retry slot the failure stands.
      guard.ReleaseRetry();
      if (decision == RetryState::Decision::kRetry && !guard.TryAcquireRetry()) {
        decision = RetryState::Decision::kNotRetriable;
      }
    }
    // A try that is retried still tells outlier detection how it went.
    if (decision == RetryState::Decision::kRetry) {
      guard.ReportTry(info.upstream_host, held ? held_status : failure.status,
                      held ? flags::kNone : std::string_view(failure.flag), w.loop().Now());
    }
    if (decision != RetryState::Decision::kRetry) {
      if (decision == RetryState::Decision::kLimitExceeded) {
        w.CountRetry(cluster, retry_event::kLimitExceeded);
        failure.flag += ",";
        failure.flag += flags::kRetryLimitExceeded;
      } else if (decision == RetryState::Decision::kNotReplayable) {
        w.CountRetry(cluster, retry_event::kBodyTooLarge);
      }
      co_return co_await AnswerLocal(w, *ds, info, failure, &scope);
    }
    auto wait = retry.NextBackoff(w.loop().Now(), w.Random());
    if (!wait) {  // the route's timeout comes first
      w.CountRetry(cluster, retry_event::kTimeout);
      const LocalReply reply = UpstreamTimeout();
      co_return co_await AnswerLocal(w, *ds, info, reply, &scope);
    }
    if (wait->count() > 0) (void)co_await w.loop().Sleep(*wait, {.scope = &scope});
    w.CountRetry(cluster, retry_event::kRetry);
    avoid = ep->Key();
  }
}

}  // namespace

io::Task<void> ServeHttp2(const Downstream& d, io::ByteStream& stream) {
  Worker& w = d.worker;
  auto gone = std::make_shared<io::Event>(w.loop());
  auto transport = http2::StreamTransport::Owning(std::make_unique<LentStream>(stream, gone),
                                                  d.peer, d.target.authority);
  Worker* wp = &w;
  Downstream copy = d;
  copy.scope = nullptr;  // request handlers may outlive this connection's frame
  http2::Session::StreamHandler handler = [wp, copy](std::unique_ptr<SessionStream> s,
                                                     const H2Headers& h) {
    wp->SpawnCounted(ServeH2Request(copy, std::move(s), h));
  };
  http2::SessionOptions so = w.options().upstream.conn.session();
  auto session = http2::Session::Start(w.loop(), std::move(transport), http2::H2Role::kServer, so,
                                       std::move(handler));
  if (!session.ok()) {
    w.CountDownstreamError("http2", "session_setup");
    co_return;
  }
  w.TrackDownstream(*session);
  // A downstream that sent HTTP/2 garbage (or broke the protocol) is counted.
  (*session)->SetOnClosed([wp](http2::Session* s) {
    const base::ErrorReason why = base::ReasonOf(s->close_reason());
    if (why == base::ErrorReason::kH2Protocol || why == base::ErrorReason::kH2Setup ||
        why == base::ErrorReason::kMalformed) {
      wp->CountDownstreamError("http2", "protocol_error");
    }
  });
  session->reset();  // the session's tasks keep it alive while it serves
  (void)co_await gone->Wait({});
}

}  // namespace ambit::waypoint
