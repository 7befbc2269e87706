// HTTP/1.1 downstream: requests parsed one after another on the connection
// (keep-alive, pipelining in order), each routed to an endpoint chosen per
// request and sent over a pooled upstream HTTP/1.1 stream; WebSocket and
// other upgrades become a raw relay after the 101.
#include <fmt/format.h>

#include "common/base/error.h"
#include "common/base/log.h"
#include "waypoint/proxy/circuit_breaker.h"
#include "waypoint/proxy/downstream.h"
#include "waypoint/proxy/filters.h"
#include "waypoint/proxy/h2_upgrade.h"
#include "waypoint/proxy/http1_exchange.h"
#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/mirror.h"
#include "waypoint/proxy/retry.h"
#include "waypoint/proxy/router.h"
#include "waypoint/proxy/access_log.h"
#include "waypoint/proxy/tracing.h"
#include "waypoint/proxy/worker.h"

namespace ambit::waypoint {

namespace {

using Event = http1::Parser::Event;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Answers locally and accounts the request; returns whether the connection
// may continue (only when the request carried no body we did not read).
// Callers pass a named LocalReply: GCC 12 mis-destroys temporaries built
// inside a co_await expression (found by the netns malformed-input test).
io::Task<bool> Reply(const Downstream& d, io::ByteStream& down, RequestInfo& info,
                     const LocalReply& reply, bool may_continue) {
  const bool keep = may_continue && !d.worker.draining();
  std::string bytes =
      SerializeLocalReply(reply, !keep, info.request_id, info.protocol == "HTTP/1.0");
  Status st = co_await down.Write(Bytes(bytes), {.scope = d.scope});
  info.response_code = reply.status;
  info.response_flags = reply.flag;
  info.details = reply.details;
  info.bytes_sent = reply.body.size();
  d.worker.requests().Record(d.worker.index(), info, d.worker.loop().Now());
  co_return st.ok() && keep;
}

// How the retry policy saw the response that went downstream.
struct Forwarded {
  bool limit_hit = false;       // retriable, but no retries left (URX)
  bool body_too_large = false;  // retriable, but the body was not kept
  bool retried = false;         // it came from a retry
  bool reuse_upstream = true;   // maxRequestsPerConnection not reached
  base::Duration idle_timeout{0};  // the cluster's http.idleTimeout (zero: the pool's)
};

base::Duration HttpIdleTimeout(const ClusterRuntime* rt) {
  if (rt == nullptr || !rt->pool.http_idle_timeout) return base::Duration::zero();
  return std::chrono::duration_cast<base::Duration>(*rt->pool.http_idle_timeout);
}

// An HTTP/1.1 "connection" whose request goes up as an HTTP/2 stream
// (h2_upgrade.h), opened on the worker's h2 pool when the head is written.
UpstreamConn H2UpgradeConn(const Downstream& d, const EndpointPtr& ep, H2Limits limits) {
  Worker* w = &d.worker;
  const WaypointState* state = d.state.get();
  io::CancelScope* scope = d.scope;
  UpstreamConn up;
  up.endpoint = ep->Key();
  up.live_key = ep->LiveKey();
  up.poolable = false;
  up.stream = std::make_unique<H2UpgradeStream>(
      w->loop(), [w, state, scope, ep, limits = std::move(limits)](
                     const http2::H2Headers& h,
                     bool end) -> io::Task<StatusOr<std::unique_ptr<http2::SessionStream>>> {
        co_return co_await w->h2_pool().OpenRequest(w->pool(), *state, *ep, h, end, scope, limits);
      });
  return up;
}

// A response head went downstream: the rest of the exchange's accounting,
// the upgrade relay, and the upstream back to its pool when it can be.
io::Task<bool> FinishForwarded(const Downstream& d, io::ByteStream& down, RequestInfo& info,
                               UpstreamConn& up, const ExchangeResult& r, const Forwarded& f,
                               const std::string& cluster) {
  Worker& w = d.worker;
  info.bytes_sent = r.response_bytes;
  info.response_code = r.status;
  if (r.upgraded) {
    // WebSocket and friends: bytes both ways until either side ends.
    info.details = "upgraded";
    w.requests().Record(w.index(), info, w.loop().Now());
    RelayTotals t = co_await RelayStreams(down, *up.stream, d.scope);
    (void)t;
    co_return false;
  }
  if (!r.response_complete) {
    info.response_flags = std::string(r.timed_out               ? flags::kUpstreamTimeout
                                      : r.response_error.ok() ? flags::kDownstreamReset
                                                              : flags::kUpstreamReset);
    if (r.timed_out) up.stream->Abort();
    info.details = std::string(r.response_error.ok() ? r.request_error.message()
                                                     : r.response_error.message());
    down.Abort();  // the client must not take a cut response for a whole one
  }
  if (f.limit_hit) {
    AddResponseFlag(info, flags::kRetryLimitExceeded);
    w.CountRetry(cluster, retry_event::kLimitExceeded);
  } else if (f.body_too_large) {
    w.CountRetry(cluster, retry_event::kBodyTooLarge);
  } else if (f.retried) {
    w.CountRetry(cluster, retry_event::kSuccess);
  }
  w.requests().Record(w.index(), info, w.loop().Now());
  if (r.upstream_reusable && f.reuse_upstream) {
    up.cluster = cluster;
    up.idle_timeout = f.idle_timeout;
    w.http1_pool().Put(std::move(up));
  }
  co_return r.downstream_reusable && !w.draining();
}

// One request: endpoint, upstream stream, exchange, accounting. Returns
// whether the downstream connection can carry another request.
io::Task<bool> ServeRequest(const Downstream& d, io::ByteStream& down, http1::Parser& parser,
                            http1::RequestHead head) {
  Worker& w = d.worker;
  RequestInfo info = d.NewRequest(w.loop().Now());
  info.method = head.method;
  info.path = std::string(head.target);
  info.protocol = fmt::format("HTTP/1.{}", head.version_minor);
  if (auto h = http1::FindHeader(head.headers, "host")) info.authority = std::string(*h);
  if (auto ua = http1::FindHeader(head.headers, "user-agent")) info.user_agent = std::string(*ua);
  const bool no_body = head.framing == http1::Framing::kNone;
  if (head.method == "CONNECT") {
    const LocalReply reply{405, "CONNECT is not served by the waypoint", "-", "method_not_allowed"};
    co_return co_await Reply(d, down, info, reply, false);
  }
  // The route step: a local answer, or the cluster and the request edits.
  const RouteResult rr =
      RouteHeaders(d, head.method, head.target, info.authority, head.headers, w.Random());
  NoteRoute(d, rr, info);
  StartTrace(d, info, head.headers);
  CaptureLogHeaders(info, head.headers);
  // Request filters (authorization, rate limits), then fault injection
  // (before the route's action, like Envoy's fault filter).
  const HeaderView<http1::Headers> filter_headers(head.headers);
  FilterVerdict verdict = co_await RunRequestFilters(
      d, rr, {.method = head.method, .path = head.target, .authority = info.authority,
              .headers = &filter_headers},
      info, d.scope);
  if (verdict.reply) {
    LocalReply reply = std::move(*verdict.reply);
    for (const auto& kv : verdict.response_headers.set) reply.headers.push_back(kv);
    for (const auto& kv : verdict.response_headers.add) reply.headers.push_back(kv);
    co_return co_await Reply(d, down, info, reply, no_body);
  }
  const FaultDecision fault = DecideFault(d, rr);
  if (fault.delay.count() > 0) {
    Status slept = co_await w.loop().Sleep(fault.delay, {.scope = d.scope});
    if (!slept.ok()) co_return false;  // the connection went away meanwhile
    info.response_flags = "DI";
  }
  if (fault.abort) {
    const LocalReply reply = *fault.abort;
    co_return co_await Reply(d, down, info, reply, no_body);
  }
  if (rr.kind == RouteResult::Kind::kLocal) {
    const LocalReply reply = rr.reply;
    co_return co_await Reply(d, down, info, reply, no_body);
  }
  // Circuit breaking (DestinationRule connectionPool): past a limit, 503 UO
  // at once. The guard also reports the outcome to outlier detection.
  // h2UpgradePolicy: UPGRADE (no Upgrade/WebSocket request): the request goes
  // upstream as HTTP/2, under the HTTP/2 pool's limits.
  const ClusterRuntime* runtime = ClusterRuntimeFor(d, rr);
  const bool to_h2 = runtime != nullptr && runtime->pool.UpgradeHttp1() && !head.upgrade;
  ClusterGuard guard = co_await AdmitRequest(runtime, !to_h2, &info, w.loop(), d.scope);
  if (guard.overflow()) {
    const LocalReply reply = ClusterGuard::OverflowReply();
    co_return co_await Reply(d, down, info, reply, no_body);
  }
  UpstreamOptions upstream_options = w.options().upstream;
  if (auto ct = guard.connect_timeout()) upstream_options.connect_timeout = *ct;
  ExchangeOptions eo;
  if (rr.route != nullptr) {
    ApplyHeaderOps(rr.route->request_headers, head.headers);
    ApplyHeaderOps(rr.cluster->request_headers, head.headers);
    RewrittenTarget t = RewriteRequest(rr, head.target);
    head.target = std::move(t.path);
    if (!t.authority.empty()) http1::SetHeader(head.headers, "host", t.authority);
    eo.response_ops = {&rr.route->response_headers, &rr.cluster->response_headers};
  }
  if (!verdict.response_headers.empty()) eo.response_ops.push_back(&verdict.response_headers);
  if (!rr.lb_response_headers.empty()) eo.response_ops.push_back(&rr.lb_response_headers);
  // Mirrors get the request as edited; a body is copied while forwarded.
  std::vector<const route::Mirror*> mirrors;
  std::shared_ptr<MirrorCopy> copy;
  if (!head.upgrade) mirrors = ChooseMirrors(d, rr.route);
  if (!mirrors.empty()) {
    copy = std::make_shared<MirrorCopy>();
    copy->method = head.method;
    copy->target = head.target;
    if (auto host = http1::FindHeader(head.headers, "host")) copy->authority = std::string(*host);
    copy->headers = head.headers;
    if (no_body) {
      SendMirrors(d, mirrors, copy);
      mirrors.clear();
    } else {
      eo.body_copy = &copy->body;
      eo.body_copy_limit = kMaxMirrorBody;
    }
  }
  StampTrace(info, head.headers);
  UpstreamRequest prep = BuildUpstreamRequest(head, d.peer.ip().ToString());
  if (!prep.ok) {
    w.CountDownstreamError("http1", "bad_upgrade");
    const LocalReply reply{400, prep.error, "DPE", "downstream_protocol_error"};
    co_return co_await Reply(d, down, info, reply, false);
  }
  info.request_id = prep.request_id;
  const std::string& request_head = prep.head;

  eo.method = head.method;
  eo.request_framing = head.framing;
  eo.downstream_minor = head.version_minor;
  eo.downstream_keep_alive = head.keep_alive && !w.draining();
  eo.upgrade = head.upgrade;
  eo.upgrade_value = prep.upgrade_value;

  // The try loop (retry.h): a try that fails in a way the route's retry
  // policy covers is tried again after a backoff, on another endpoint when
  // there is one, with the request head and the kept body sent again. A
  // pooled stream the upstream closed meanwhile fails without a byte: such
  // a request (without a body) is sent once more on a fresh stream without
  // counting as a try.
  RetryState retry = RetryStateFor(rr, info.start);
  std::string replay;
  if (retry.may_retry() && !no_body && !head.upgrade) eo.replay = &replay;
  eo.loop = &w.loop();
  bool limit_hit = false, body_too_large = false;
  int held_status = 0;
  eo.hold = [&](const http1::ResponseHead& h, bool replayable) {
    if (head.upgrade) return false;
    TryResult t{.outcome = TryOutcome::kResponse, .status = h.status};
    t.rate_limited = http1::FindHeader(h.headers, "x-envoy-ratelimited").has_value();
    const auto decision = retry.Decide(t, replayable);
    limit_hit = decision == RetryState::Decision::kLimitExceeded;
    body_too_large = decision == RetryState::Decision::kNotReplayable;
    // DestinationRule maxRetries: without a retry slot this response stands.
    guard.ReleaseRetry();
    if (decision == RetryState::Decision::kRetry && !guard.TryAcquireRetry()) return false;
    held_status = h.status;
    return decision == RetryState::Decision::kRetry;
  };
  // The body's state across tries: not read yet (a connect failure came
  // first), read and kept, or read and not kept (no retry possible).
  enum class Body : uint8_t { kUnread, kKept, kLost } body = Body::kUnread;
  std::string avoid;
  bool stale_resent = false;
  const std::string cluster = RequestCluster(info);
  for (;;) {
    auto ep = PickRoutedEndpoint(d, rr, avoid, retry.ExcludedPriorities());
    if (!ep) {
      const LocalReply reply = NoHealthyUpstream();
      co_return co_await Reply(d, down, info, reply, no_body && body != Body::kLost);
    }
    retry.StartTry();
    retry.NotePriority(w.picker().LastPriority());
    StampTraceTry(info, retry.tries(), prep.head);
    info.attempts = retry.tries();
    info.upstream_host = ep->address.ToString();
    info.upstream_workload = ep->workload;
    eo.deadline = retry.TryDeadline(w.loop().Now());
    TryResult failed;
    LocalReply failure;
    bool held = false;
    bool may_continue = no_body;
    std::optional<UpstreamConn> pooled;
    if (!to_h2) pooled = w.http1_pool().Take(ep->Key());
    const bool reused = pooled.has_value();
    UpstreamConn up;
    if (to_h2) {
      up = H2UpgradeConn(d, ep, H2LimitsFor(runtime, cluster));
    } else if (reused) {
      up = std::move(*pooled);
    } else {
      auto opened = co_await OpenStream(w.loop(), w.pool(), *d.state, *ep, upstream_options,
                                        d.scope);
      if (opened.ok()) up = std::move(*opened);
      failed.outcome = TryOutcome::kConnectFailure;
      if (!opened.ok()) failure = UpstreamConnectFailure(opened.status());
    }
    if (up.stream != nullptr) {
      // A retry sends the kept body after the head (one chunk when chunked).
      std::string bytes = request_head;
      if (body == Body::kKept && !replay.empty()) {
        if (head.framing == http1::Framing::kChunked) {
          http1::AppendChunk(bytes, std::as_bytes(std::span(replay.data(), replay.size())));
          http1::AppendLastChunk(bytes, {});
        } else {
          bytes += replay;
        }
      } else if (body == Body::kKept && head.framing == http1::Framing::kChunked) {
        http1::AppendLastChunk(bytes, {});
      }
      Status wrote = co_await up.stream->Write(Bytes(bytes), {.scope = d.scope});
      if (!wrote.ok() && base::ReasonOf(wrote) == base::ErrorReason::kOverflow) {
        const LocalReply reply = ClusterGuard::OverflowReply();  // h2 pool limits: 503 UO
        co_return co_await Reply(d, down, info, reply, no_body);
      }
      if (!wrote.ok()) {
        if (reused && no_body && !stale_resent) {  // stale keep-alive: once more, fresh
          stale_resent = true;
          retry.ForgetTry();
          continue;
        }
        failed.outcome = TryOutcome::kResetBeforeRequest;
        failure = UpstreamConnectFailure(wrote);
      } else {
        eo.request_already_sent = body != Body::kUnread;
        ExchangeResult r = co_await RunExchange(down, parser, *up.stream, eo);
        if (body == Body::kUnread) {
          body = r.request_complete && !r.replay_overflow && (no_body || eo.replay != nullptr)
                     ? Body::kKept
                     : Body::kLost;
        }
        // (A reset is the upstream's answer, left to the retry policy; a
        // clean close without a byte is a keep-alive that timed out.)
        if (!r.response_started && !r.held && r.upstream_eof && reused && no_body &&
            r.request_error.ok() && !r.timed_out && !stale_resent) {
          stale_resent = true;
          retry.ForgetTry();
          avoid.clear();
          continue;
        }
        if (!mirrors.empty()) {
          if (r.request_complete && !r.body_copy_overflow) {
            SendMirrors(d, mirrors, copy);
          } else if (r.body_copy_overflow) {
            w.CountRoute("mirror_skipped_body");
          }
          mirrors.clear();
        }
        info.bytes_received = r.request_bytes;
        if (r.held) {
          up.stream->Abort();  // its response is not read: never reused
          held = true;
        } else if (r.response_started) {
          ++up.requests;
          const Forwarded f{.limit_hit = limit_hit, .body_too_large = body_too_large,
                            .retried = retry.tries() > 1,
                            .reuse_upstream = guard.MayReuse(up.requests),
                            .idle_timeout = HttpIdleTimeout(guard.runtime())};
          co_return co_await FinishForwarded(d, down, info, up, r, f, cluster);
        } else if (!r.request_error.ok()) {  // the client went away or sent a bad body
          info.response_flags = std::string(flags::kDownstreamReset);
          info.details = std::string(r.request_error.message());
          if (absl::IsInvalidArgument(r.request_error)) {
            w.CountDownstreamError("http1", "malformed_body");
            const LocalReply reply{400, "malformed request body", "DPE",
                                   "downstream_protocol_error"};
            co_return co_await Reply(d, down, info, reply, false);
          }
          w.requests().Record(w.index(), info, w.loop().Now());
          co_return false;
        } else if (r.response_malformed) {
          const LocalReply reply{502, "upstream sent a malformed response", "UPE",
                                 "upstream_protocol_error"};
          co_return co_await Reply(d, down, info, reply, false);
        } else if (r.timed_out) {
          up.stream->Abort();  // the upstream stream is reset, never reused
          may_continue = r.request_complete && no_body;
          if (retry.OverallExpired(w.loop().Now())) {
            if (retry.tries() > 1) w.CountRetry(cluster, retry_event::kTimeout);
            const LocalReply reply = UpstreamTimeout();
            co_return co_await Reply(d, down, info, reply, may_continue);
          }
          failed.outcome = TryOutcome::kPerTryTimeout;
          failure = UpstreamTimeout();
        } else {
          may_continue = r.request_complete && no_body;
          failed.outcome = TryOutcome::kReset;
          failure = UpstreamResetBeforeHeaders(r.response_error);
        }
      }
    }
    // The try failed (or its response was held back): again, or answer.
    RetryState::Decision decision = held ? RetryState::Decision::kRetry
                                         : retry.Decide(failed, body != Body::kLost);
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
      co_return co_await Reply(d, down, info, failure, may_continue && body != Body::kLost);
    }
    auto wait = retry.NextBackoff(w.loop().Now(), w.Random());
    if (!wait) {  // the route's timeout comes first
      w.CountRetry(cluster, retry_event::kTimeout);
      const LocalReply reply = UpstreamTimeout();
      co_return co_await Reply(d, down, info, reply, no_body && body != Body::kLost);
    }
    if (wait->count() > 0) {
      Status slept = co_await w.loop().Sleep(*wait, {.scope = d.scope});
      if (!slept.ok()) co_return false;  // the connection went away meanwhile
    }
    w.CountRetry(cluster, retry_event::kRetry);
    avoid = ep->Key();
  }
}

}  // namespace

io::Task<void> ServeHttp1(const Downstream& d, io::ByteStream& down) {
  Worker& w = d.worker;
  http1::Parser parser(http1::Kind::kRequest);
  for (bool first = true;; first = false) {
    const base::Duration wait =
        first ? w.options().request_headers_timeout : w.options().idle_timeout;
    Fed f = co_await NextEvent(down, parser, {.scope = d.scope, .timeout = wait});
    if (!f.error.ok()) {
      if (absl::IsDeadlineExceeded(f.error) && parser.mid_message()) {
        w.CountDownstreamError("http1", "request_header_timeout");
        RequestInfo info = d.NewRequest(w.loop().Now());
        const LocalReply reply{408, "request timeout", "-", "request_header_timeout"};
        (void)co_await Reply(d, down, info, reply, false);
      }
      break;
    }
    const auto& res = f.result;
    if (f.eof && res.event == Event::kNeedMore) break;  // clean close between requests
    if (res.event == Event::kComplete) {
      // The end of a bodiless request answered locally (429, fault abort,
      // direct response): nothing read it, so it comes before the next head.
      down.Consume(res.consumed);
      continue;
    }
    if (res.event == Event::kError || (f.eof && res.event != Event::kHead)) {
      const http1::ParseError e = f.eof ? http1::ParseError::kPrematureEof : parser.error();
      w.CountDownstreamError("http1", http1::ParseErrorName(e));
      AMBIT_LOG(kDebug, "waypoint", "bad HTTP/1.1 request from {}: {}", d.peer.ToString(),
                http1::ParseErrorName(e));
      if (!f.eof) {
        RequestInfo info = d.NewRequest(w.loop().Now());
        info.response_flags = std::string(flags::kDownstreamProtocolError);
        LocalReply bad{http1::StatusForError(e), std::string(http1::ReasonPhrase(
                                                     http1::StatusForError(e))),
                       "DPE", std::string("http1.codec_error{") +
                                  std::string(http1::ParseErrorName(e)) + "}"};
        (void)co_await Reply(d, down, info, bad, false);
      }
      break;
    }
    if (res.event == Event::kComplete) {
      // The end of a bodyless request that was answered locally (its head
      // was all we read): not a new request.
      down.Consume(res.consumed);
      continue;
    }
    down.Consume(res.consumed);
    http1::RequestHead head = parser.TakeRequest();
    if (!co_await ServeRequest(d, down, parser, std::move(head))) break;
  }
  down.CloseWrite();
}

}  // namespace ambit::waypoint
