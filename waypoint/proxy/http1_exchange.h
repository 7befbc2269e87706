// One HTTP/1.1 request/response exchange between a downstream stream and an
// upstream stream (http1_proxy.cc drives the connection around it). Both
// directions run at once (io::WhenAll) so 100-continue, early responses and
// streaming bodies work; body bytes are forwarded as they arrive, re-framed
// per hop (chunked stays chunked, a read-until-close response becomes
// chunked toward an HTTP/1.1 client).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/http1/codec.h"
#include "common/io/byte_stream.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"
#include "common/io/task.h"
#include "waypoint/route/route_table.h"

namespace ambit::waypoint {

// Parser event with its bytes still in the stream: the caller consumes
// `result.consumed` once it used `result.body`.
struct Fed {
  http1::Parser::Result result;
  bool eof = false;
  Status error;
};
// Peeks `s` and feeds `p` until an event other than kNeedMore, EOF or an error.
io::Task<Fed> NextEvent(io::ByteStream& s, http1::Parser& p, io::OpOptions o);

struct ExchangeOptions {
  std::string method;                 // of the request (HEAD: no body)
  http1::Framing request_framing = http1::Framing::kNone;
  int downstream_minor = 1;           // HTTP/1.<minor> of the client
  bool downstream_keep_alive = true;  // the client wants to keep the connection
  bool upgrade = false;               // the request asked for an upgrade
  std::string upgrade_value;          // its Upgrade header
  bool request_already_sent = false;  // a retry: the request message was consumed
  // Route header edits on the final response head, in order (route, cluster).
  std::vector<const route::HeaderOps*> response_ops;
  // When set, request body bytes are also appended here (for mirrors) up to
  // `body_copy_limit`; past it the copy is dropped (ExchangeResult::
  // body_copy_overflow).
  std::string* body_copy = nullptr;
  size_t body_copy_limit = 0;
  // When set, request body bytes are also kept here for a retry, up to
  // kMaxRetryBody (retry.h); past it ExchangeResult::replay_overflow.
  std::string* replay = nullptr;
  // Asked with each final response head before it goes downstream
  // (`replayable`: the whole request was sent and kept); true holds it back
  // (ExchangeResult::held) so the caller can try again.
  std::function<bool(const http1::ResponseHead& head, bool replayable)> hold;
  // The route's timeout: the response must have ended by then (`loop` tells
  // the time).
  std::optional<base::MonoTime> deadline;
  io::Loop* loop = nullptr;
};

struct ExchangeResult {
  bool request_complete = false;
  bool response_started = false;     // a final head went downstream
  bool response_complete = false;
  bool upstream_reusable = false;    // keep-alive upstream, both sides ended cleanly
  bool downstream_reusable = false;
  bool upgraded = false;             // 101: bytes flow raw from now on
  int status = 0;
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  bool upstream_silent = false;      // not one response byte (a stale keep-alive?)
  bool upstream_eof = false;         // ...and the upstream closed cleanly (not a reset)
  Status request_error;              // downstream side (client reset, malformed body)
  Status response_error;             // upstream side (reset, malformed response)
  bool response_malformed = false;
  bool body_copy_overflow = false;
  bool timed_out = false;            // the try's deadline fired (response_error says so)
  bool replay_overflow = false;      // the body outgrew the replay copy
  bool held = false;                 // `hold` kept the response head back (status set)
};

// `request_parser` has just returned the request head; the request head
// itself has already been written upstream.
io::Task<ExchangeResult> RunExchange(io::ByteStream& down, http1::Parser& request_parser,
                                     io::ByteStream& up, const ExchangeOptions& options);

}  // namespace ambit::waypoint
