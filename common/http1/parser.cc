// Parser on llhttp (strict mode: no lenient flags). llhttp is push-style;
// every event pauses it (HPE_PAUSED from the callback), so Next() returns
// one event per call and `consumed` is exactly llhttp's error position.
#include <llhttp.h>

#include <cstring>

#include "common/base/ascii.h"
#include "common/http1/codec.h"

namespace ambit::http1 {

using Event = Parser::Event;

struct Parser::Impl {
  llhttp_t p{};
  llhttp_settings_t settings{};
  Kind kind;
  Limits limits;
  bool head_method = false;     // response to HEAD: no body
  bool connect_method = false;  // response to CONNECT: 2xx upgrades

  // Per message.
  RequestHead req;
  ResponseHead resp;
  Headers trailers;
  std::string field, value;
  bool in_value = false;
  bool head_done = false;
  bool begun = false;
  size_t head_bytes = 0;
  size_t trailer_bytes = 0;

  // Event of the current execute call.
  Event event = Event::kNeedMore;
  std::span<const std::byte> body;
  bool pending_complete = false;  // kTrailers delivered, kComplete next
  bool upgraded = false;
  ParseError error = ParseError::kNone;
  ParseError cb_error = ParseError::kNone;  // set by a callback returning HPE_USER

  Impl(Kind k, Limits l) : kind(k), limits(l) {
    llhttp_settings_init(&settings);
    settings.on_message_begin = OnMessageBegin;
    settings.on_url = OnUrl;
    settings.on_status = OnStatus;
    settings.on_header_field = OnHeaderField;
    settings.on_header_value = OnHeaderValue;
    settings.on_header_value_complete = OnHeaderValueComplete;
    settings.on_headers_complete = OnHeadersComplete;
    settings.on_body = OnBody;
    settings.on_message_complete = OnMessageComplete;
    llhttp_init(&p, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
    p.data = this;
  }

  static Impl* Self(llhttp_t* p) { return static_cast<Impl*>(p->data); }

  Headers& CurrentHeaders() {
    if (head_done) return trailers;
    return kind == Kind::kRequest ? req.headers : resp.headers;
  }

  // Counts bytes of the head (or trailers) against the limit.
  int Account(size_t n) {
    if (!head_done) {
      head_bytes += n;
      if (head_bytes > limits.max_head_bytes) return Fail(ParseError::kHeadTooLarge);
    } else {
      trailer_bytes += n;
      if (trailer_bytes > limits.max_head_bytes) return Fail(ParseError::kTrailersTooLarge);
    }
    return 0;
  }

  int Fail(ParseError e) {
    cb_error = e;
    return HPE_USER;
  }

  static int OnMessageBegin(llhttp_t* p) {
    Impl* s = Self(p);
    s->req = RequestHead{};
    s->resp = ResponseHead{};
    s->trailers.clear();
    s->field.clear();
    s->value.clear();
    s->in_value = false;
    s->head_done = false;
    s->begun = true;
    s->head_bytes = 16;  // start line overhead
    s->trailer_bytes = 0;
    return 0;
  }

  static int OnUrl(llhttp_t* p, const char* at, size_t n) {
    Impl* s = Self(p);
    s->req.target.append(at, n);
    return s->Account(n);
  }

  static int OnStatus(llhttp_t* p, const char* at, size_t n) {
    Impl* s = Self(p);
    s->resp.reason.append(at, n);
    return s->Account(n);
  }

  static int OnHeaderField(llhttp_t* p, const char* at, size_t n) {
    Impl* s = Self(p);
    s->field.append(at, n);
    return s->Account(n);
  }

  static int OnHeaderValue(llhttp_t* p, const char* at, size_t n) {
    Impl* s = Self(p);
    s->value.append(at, n);
    return s->Account(n);
  }

  static int OnHeaderValueComplete(llhttp_t* p) {
    Impl* s = Self(p);
    Headers& h = s->CurrentHeaders();
    if (!s->head_done && h.size() >= s->limits.max_headers) {
      return s->Fail(ParseError::kTooManyHeaders);
    }
    if (int e = s->Account(4); e != 0) return e;  // ": " and CRLF
    // What llhttp lets through but a proxy must not forward: names that are
    // not tokens, values with CR/LF/NUL (obs-fold).
    if (!IsValidHeaderName(s->field) || !IsValidHeaderValue(s->value)) {
      return s->Fail(ParseError::kMalformed);
    }
    h.push_back({std::move(s->field), std::string(base::TrimOws(s->value))});
    s->field.clear();
    s->value.clear();
    return 0;
  }

  static int OnHeadersComplete(llhttp_t* p) {
    Impl* s = Self(p);
    s->head_done = true;
    if (p->http_major != 1 || p->http_minor > 1) return s->Fail(ParseError::kUnsupportedVersion);
    const bool chunked = (p->flags & F_CHUNKED) != 0;
    const bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    if (s->kind == Kind::kRequest) {
      RequestHead& r = s->req;
      r.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
      r.version_minor = p->http_minor;
      r.framing = chunked      ? Framing::kChunked
                  : has_length ? Framing::kContentLength
                               : Framing::kNone;
      r.content_length = has_length && !chunked ? p->content_length : 0;
      r.keep_alive = llhttp_should_keep_alive(p) != 0;
      r.upgrade = p->upgrade != 0;
      auto expect = FindHeader(r.headers, "expect");
      r.expect_continue = expect.has_value() && base::EqualsIgnoreCase(*expect, "100-continue");
    } else {
      ResponseHead& r = s->resp;
      r.status = p->status_code;
      r.version_minor = p->http_minor;
      const int st = r.status;
      const bool no_body = (st >= 100 && st < 200) || st == 204 || st == 304 || s->head_method;
      if (s->head_method) p->flags |= F_SKIPBODY;
      if (s->connect_method && st >= 200 && st < 300) {
        p->upgrade = 1;
        p->flags |= F_SKIPBODY;  // the tunnel starts right after the head
      }
      r.upgrade = p->upgrade != 0 && (st == 101 || s->connect_method);
      if (no_body || r.upgrade) {
        r.framing = Framing::kNone;
      } else if (chunked) {
        r.framing = Framing::kChunked;
      } else if (has_length) {
        r.framing = Framing::kContentLength;
        r.content_length = p->content_length;
      } else {
        r.framing = Framing::kUntilClose;
      }
      r.keep_alive = llhttp_should_keep_alive(p) != 0 && r.framing != Framing::kUntilClose;
    }
    s->event = Event::kHead;
    return HPE_PAUSED;
  }

  static int OnBody(llhttp_t* p, const char* at, size_t n) {
    Impl* s = Self(p);
    if (n == 0) return 0;  // an empty span flushed at the end of the input
    s->body = std::as_bytes(std::span(at, n));
    s->event = Event::kBody;
    return HPE_PAUSED;
  }

  static int OnMessageComplete(llhttp_t* p) {
    Impl* s = Self(p);
    s->begun = false;
    if (p->upgrade) return 0;  // llhttp stops with HPE_PAUSED_UPGRADE
    if (!s->trailers.empty()) {
      s->event = Event::kTrailers;
      s->pending_complete = true;
    } else {
      s->event = Event::kComplete;
    }
    return HPE_PAUSED;
  }

  ParseError MapError(llhttp_errno_t e) const {
    // A callback's own verdict wins (llhttp reports it as HPE_USER or as
    // that callback's HPE_CB_* code).
    if (cb_error != ParseError::kNone) return cb_error;
    switch (e) {
      case HPE_INVALID_METHOD: return ParseError::kBadMethod;
      case HPE_INVALID_VERSION:
      case HPE_PAUSED_H2_UPGRADE: return ParseError::kUnsupportedVersion;
      case HPE_INVALID_CONTENT_LENGTH: return ParseError::kBadContentLength;
      case HPE_UNEXPECTED_CONTENT_LENGTH:  // with Transfer-Encoding, or duplicated
        return (p.flags & F_TRANSFER_ENCODING) != 0 ? ParseError::kBadTransferEncoding
                                                    : ParseError::kBadContentLength;
      case HPE_INVALID_TRANSFER_ENCODING: return ParseError::kBadTransferEncoding;
      case HPE_INVALID_EOF_STATE: return ParseError::kPrematureEof;
      default: return ParseError::kMalformed;
    }
  }

  Result Execute(std::span<const std::byte> input) {
    static const char kEmpty[1] = {0};
    const char* data = input.empty() ? kEmpty : reinterpret_cast<const char*>(input.data());
    event = Event::kNeedMore;
    llhttp_errno_t e = llhttp_execute(&p, data, input.size());
    Result r;
    if (e == HPE_OK) {
      r.consumed = input.size();
      return r;
    }
    const char* pos = llhttp_get_error_pos(&p);
    r.consumed = pos != nullptr && pos >= data ? static_cast<size_t>(pos - data) : 0;
    if (r.consumed > input.size()) r.consumed = input.size();
    if (e == HPE_PAUSED) {
      llhttp_resume(&p);
      r.event = event;
      if (event == Event::kBody) r.body = body;
      return r;
    }
    if (e == HPE_PAUSED_UPGRADE) {
      upgraded = true;
      r.event = Event::kUpgrade;
      return r;
    }
    error = MapError(e);
    if (error == ParseError::kNone) error = ParseError::kMalformed;
    r.event = Event::kError;
    r.consumed = 0;
    return r;
  }
};

Parser::Parser(Kind kind, Limits limits) : impl_(std::make_unique<Impl>(kind, limits)) {}
Parser::~Parser() = default;

Parser::Result Parser::Next(std::span<const std::byte> input) {
  Impl& s = *impl_;
  if (s.error != ParseError::kNone) return {Event::kError, 0, {}};
  if (s.upgraded) return {Event::kUpgrade, 0, {}};
  if (s.pending_complete) {
    s.pending_complete = false;
    return {Event::kComplete, 0, {}};
  }
  return s.Execute(input);
}

Parser::Result Parser::Finish() {
  Impl& s = *impl_;
  if (s.error != ParseError::kNone) return {Event::kError, 0, {}};
  if (s.upgraded) return {Event::kUpgrade, 0, {}};
  if (s.pending_complete) {
    s.pending_complete = false;
    return {Event::kComplete, 0, {}};
  }
  s.event = Event::kNeedMore;
  llhttp_errno_t e = llhttp_finish(&s.p);
  if (e == HPE_PAUSED) {  // a read-until-close body ended: message complete
    llhttp_resume(&s.p);
    return {s.event, 0, {}};
  }
  if (e == HPE_OK) {
    if (s.begun) {  // e.g. EOF in the middle of a head
      s.error = ParseError::kPrematureEof;
      return {Event::kError, 0, {}};
    }
    return {Event::kNeedMore, 0, {}};
  }
  s.error = e == HPE_INVALID_EOF_STATE ? ParseError::kPrematureEof : s.MapError(e);
  return {Event::kError, 0, {}};
}

void Parser::SetRequestMethod(std::string_view method) {
  impl_->head_method = base::EqualsIgnoreCase(method, "HEAD");
  impl_->connect_method = base::EqualsIgnoreCase(method, "CONNECT");
}

const RequestHead& Parser::request() const { return impl_->req; }
RequestHead Parser::TakeRequest() { return std::move(impl_->req); }
const ResponseHead& Parser::response() const { return impl_->resp; }
ResponseHead Parser::TakeResponse() { return std::move(impl_->resp); }
Headers Parser::TakeTrailers() { return std::move(impl_->trailers); }
ParseError Parser::error() const { return impl_->error; }
bool Parser::mid_message() const { return impl_->begun; }

std::string_view RequestHead::Path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string_view ParseErrorName(ParseError e) {
  switch (e) {
    case ParseError::kNone: return "none";
    case ParseError::kMalformed: return "malformed";
    case ParseError::kHeadTooLarge: return "head_too_large";
    case ParseError::kTooManyHeaders: return "too_many_headers";
    case ParseError::kBadContentLength: return "bad_content_length";
    case ParseError::kBadTransferEncoding: return "bad_transfer_encoding";
    case ParseError::kUnsupportedVersion: return "unsupported_version";
    case ParseError::kBadMethod: return "bad_method";
    case ParseError::kPrematureEof: return "premature_eof";
    case ParseError::kTrailersTooLarge: return "trailers_too_large";
  }
  return "unknown";
}

int StatusForError(ParseError e) {
  switch (e) {
    case ParseError::kHeadTooLarge:
    case ParseError::kTooManyHeaders: return 431;
    case ParseError::kUnsupportedVersion: return 505;
    default: return 400;
  }
}

}  // namespace ambit::http1
