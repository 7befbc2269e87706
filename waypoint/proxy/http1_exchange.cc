#include "waypoint/proxy/http1_exchange.h"
#include "waypoint/proxy/router.h"

#include "waypoint/proxy/http_common.h"
#include "waypoint/proxy/retry.h"

namespace ambit::waypoint {

namespace {

using Event = http1::Parser::Event;

std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Body bytes toward a hop, chunk-framed when that hop is chunked.
io::Task<Status> WriteBody(io::ByteStream& to, std::span<const std::byte> body, bool chunked,
                           io::CancelScope* scope) {
  if (body.empty()) co_return absl::OkStatus();
  if (!chunked) co_return co_await to.Write(body, {.scope = scope});
  std::string framed;
  framed.reserve(body.size() + 16);
  http1::AppendChunk(framed, body);
  co_return co_await to.Write(Bytes(framed), {.scope = scope});
}

io::Task<Status> WriteLastChunk(io::ByteStream& to, const http1::Headers& trailers,
                                io::CancelScope* scope) {
  std::string last;
  http1::AppendLastChunk(last, trailers);
  co_return co_await to.Write(Bytes(last), {.scope = scope});
}

// Appends `body` to a copy bounded by `limit`; past it the copy is dropped.
void Tee(std::string* copy, size_t limit, std::span<const std::byte> body, bool* overflow) {
  if (*overflow) return;
  if (copy->size() + body.size() > limit) {
    *overflow = true;
    copy->clear();
    return;
  }
  copy->append(reinterpret_cast<const char*>(body.data()), body.size());
}

// Request body: downstream → upstream until the request message ends.
io::Task<Status> PumpRequest(io::ByteStream& down, http1::Parser& p, io::ByteStream& up,
                             const ExchangeOptions& o, ExchangeResult* r, io::CancelScope* scope,
                             io::CancelScope* other) {
  const bool chunked = o.request_framing == http1::Framing::kChunked;
  http1::Headers trailers;
  Status st;
  if (o.request_already_sent || (o.request_framing == http1::Framing::kNone && o.upgrade)) {
    r->request_complete = true;  // the parser stops at the upgrade
    co_return st;
  }
  for (;;) {
    Fed f = co_await NextEvent(down, p, {.scope = scope});
    if (!f.error.ok()) {
      st = f.error;
      break;
    }
    const auto& res = f.result;
    if (res.event == Event::kBody) {
      st = co_await WriteBody(up, res.body, chunked, scope);
      if (!st.ok()) break;
      r->request_bytes += res.body.size();
      if (o.body_copy != nullptr) {
        Tee(o.body_copy, o.body_copy_limit, res.body, &r->body_copy_overflow);
      }
      if (o.replay != nullptr) Tee(o.replay, kMaxRetryBody, res.body, &r->replay_overflow);
      down.Consume(res.consumed);
      continue;
    }
    down.Consume(res.consumed);
    if (res.event == Event::kTrailers) {
      trailers = p.TakeTrailers();
      continue;
    }
    if (res.event == Event::kComplete) {
      if (chunked) st = co_await WriteLastChunk(up, trailers, scope);
      r->request_complete = st.ok();
      break;
    }
    // kError, or EOF inside the body.
    st = res.event == Event::kError
             ? absl::InvalidArgumentError(
                   std::string("malformed request body: ") +
                   std::string(http1::ParseErrorName(p.error())))
             : absl::AbortedError("downstream closed inside the request body");
    break;
  }
  if (!st.ok() && !scope->cancelled()) {
    r->request_error = st;
    up.Abort();
    other->Cancel();  // the response can no longer complete
  }
  co_return st;
}

// Response: upstream → downstream until the response message ends.
io::Task<Status> PumpResponse(io::ByteStream& up, io::ByteStream& down, const ExchangeOptions& o,
                              ExchangeResult* r, io::CancelScope* scope, io::CancelScope* other) {
  http1::Parser p(http1::Kind::kResponse);
  p.SetRequestMethod(o.method);
  bool down_chunked = false;
  bool up_until_close = false;
  bool upstream_keep = false;
  bool upstream_closed = false;  // EOF, not a reset
  http1::Headers trailers;
  Status st;
  for (;;) {
    io::OpOptions opts{.scope = scope};
    if (o.deadline) {
      const base::Duration left = *o.deadline - o.loop->Now();
      if (left <= base::Duration::zero()) {
        st = absl::DeadlineExceededError("upstream request timeout");
        r->timed_out = true;
        break;
      }
      opts.timeout = left;
    }
    Fed f = co_await NextEvent(up, p, opts);
    if (o.deadline && absl::IsDeadlineExceeded(f.error)) r->timed_out = true;
    if (!f.error.ok()) {
      st = f.error;
      break;
    }
    const auto& res = f.result;
    if (res.event == Event::kHead || (res.event == Event::kUpgrade && !r->response_started)) {
      http1::ResponseHead head = p.TakeResponse();
      up.Consume(res.consumed);
      http1::Headers h = head.headers;
      StripHopByHop(h);
      std::string out;
      if (head.status >= 100 && head.status < 200 && head.status != 101) {
        http1::AppendResponseHead(out, head.status, head.reason, h);  // interim (100 Continue)
        st = co_await down.Write(Bytes(out), {.scope = scope});
        if (!st.ok()) break;
        continue;
      }
      r->status = head.status;
      if (o.hold && o.hold(head, r->request_complete && !r->replay_overflow)) {
        r->held = true;  // not forwarded: the caller tries again
        break;
      }
      for (const route::HeaderOps* ops : o.response_ops) ApplyHeaderOps(*ops, h);
      if (head.status == 101 || head.upgrade) {
        if (!o.upgrade && head.status == 101) {
          st = absl::InvalidArgumentError("upstream switched protocols without an upgrade request");
          r->response_malformed = true;
          break;
        }
        if (head.status == 101) {
          h.push_back({"connection", "upgrade"});
          if (auto v = http1::FindHeader(head.headers, "upgrade")) {
            h.push_back({"upgrade", std::string(*v)});
          }
        }
        http1::AppendResponseHead(out, head.status, head.reason, h);
        st = co_await down.Write(Bytes(out), {.scope = scope});
        r->response_started = st.ok();
        r->upgraded = st.ok();
        r->response_complete = st.ok();
        break;
      }
      r->downstream_reusable = o.downstream_keep_alive && !o.upgrade;
      switch (head.framing) {
        case http1::Framing::kChunked:
          if (o.downstream_minor >= 1) {
            h.push_back({"transfer-encoding", "chunked"});
            down_chunked = true;
          } else {  // HTTP/1.0 has no chunked coding: the body ends at close
            r->downstream_reusable = false;
          }
          break;
        case http1::Framing::kUntilClose:
          up_until_close = true;
          if (o.downstream_minor >= 1) {
            h.push_back({"transfer-encoding", "chunked"});
            down_chunked = true;
          } else {
            r->downstream_reusable = false;
          }
          break;
        default:
          break;
      }
      if (!r->downstream_reusable) {
        h.push_back({"connection", "close"});
      } else if (o.downstream_minor == 0) {  // HTTP/1.0 closes unless told otherwise
        h.push_back({"connection", "keep-alive"});
      }
      upstream_keep = head.keep_alive && !up_until_close;
      http1::AppendResponseHead(out, head.status, head.reason, h);
      st = co_await down.Write(Bytes(out), {.scope = scope});
      if (!st.ok()) break;
      r->response_started = true;
      continue;
    }
    if (res.event == Event::kBody) {
      st = co_await WriteBody(down, res.body, down_chunked, scope);
      if (!st.ok()) break;
      r->response_bytes += res.body.size();
      up.Consume(res.consumed);
      continue;
    }
    up.Consume(res.consumed);
    if (res.event == Event::kTrailers) {
      trailers = p.TakeTrailers();
      continue;
    }
    if (res.event == Event::kComplete && r->response_started) {
      if (down_chunked) st = co_await WriteLastChunk(down, trailers, scope);
      r->response_complete = st.ok();
      r->upstream_reusable = st.ok() && upstream_keep && !f.eof;
      break;
    }
    if (res.event == Event::kError) {
      r->response_malformed = true;
      st = absl::InvalidArgumentError(std::string("malformed upstream response: ") +
                                      std::string(http1::ParseErrorName(p.error())));
    } else {
      upstream_closed = f.eof;
      st = absl::UnavailableError(r->response_started
                                      ? "upstream closed inside the response"
                                      : "upstream closed before a response");
    }
    break;
  }
  r->upstream_silent = !r->response_started && r->status == 0 && !p.mid_message();
  r->upstream_eof = r->upstream_silent && upstream_closed;
  if (!st.ok() && !scope->cancelled()) {
    r->response_error = st;
    other->Cancel();  // nobody will read the rest of the request
  } else if (st.ok() && !r->request_complete && !r->upgraded) {
    // Answered before the request body ended (e.g. 413): the connection
    // cannot be reused, stop reading the request.
    r->downstream_reusable = false;
    other->Cancel();
  }
  co_return st;
}

}  // namespace

io::Task<Fed> NextEvent(io::ByteStream& s, http1::Parser& p, io::OpOptions o) {
  // An event that needs no more input first (the end of a bodyless message
  // right after its head): the stream may have nothing more to give.
  if (http1::Parser::Result r = p.Next(std::span<const std::byte>()); r.event != Event::kNeedMore) {
    co_return Fed{r, false, absl::OkStatus()};
  }
  for (;;) {
    auto chunk = co_await s.Peek(o);
    if (!chunk.ok()) co_return Fed{{}, false, chunk.status()};
    if (chunk->empty()) co_return Fed{p.Finish(), true, absl::OkStatus()};
    http1::Parser::Result r = p.Next(*chunk);
    if (r.event != Event::kNeedMore) co_return Fed{r, false, absl::OkStatus()};
    if (r.consumed == 0) {
      co_return Fed{{}, false, absl::InternalError("HTTP/1.1 parser made no progress")};
    }
    s.Consume(r.consumed);
  }
}

io::Task<ExchangeResult> RunExchange(io::ByteStream& down, http1::Parser& request_parser,
                                     io::ByteStream& up, const ExchangeOptions& options) {
  ExchangeResult r;
  io::CancelScope req_scope, resp_scope;
  (void)co_await io::WhenAll(
      PumpRequest(down, request_parser, up, options, &r, &req_scope, &resp_scope),
      PumpResponse(up, down, options, &r, &resp_scope, &req_scope));
  if (!r.request_complete) r.upstream_reusable = false;
  if (!r.request_complete || !r.response_complete) r.downstream_reusable = false;
  co_return r;
}

}  // namespace ambit::waypoint
