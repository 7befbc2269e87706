// HTTP/1.1 message codec on llhttp: one pull-style parser for requests or
// responses, and serializers for heads and chunked bodies. Sans-I/O: callers
// feed bytes and write what the serializers append. Used by the admin server
// (common/admin) and the waypoint's downstream/upstream HTTP/1.1 codecs.
//
// Parsing model: Next(input) consumes a prefix of `input` and reports one
// event. Head and trailers are buffered inside the parser (bounded by Limits);
// body bytes are not copied: a kBody event's `body` points into `input`.
//   kNeedMore  all of `input` was consumed (or nothing could be); feed more.
//   kHead      request()/response() is ready (and may be taken).
//   kBody      `body` is a slice of the message body (chunked framing removed).
//   kTrailers  chunked trailers are ready (TakeTrailers()).
//   kComplete  the message ended; the parser is ready for the next message on
//              the same connection (keep-alive) after this event.
//   kUpgrade   after the kHead of a message with an accepted upgrade
//              (request with `Upgrade` + `Connection: upgrade`, CONNECT, a
//              101 response, a 2xx answer to CONNECT): the bytes after
//              `consumed` belong to the upgraded protocol; every later call
//              returns kUpgrade again.
// Interim responses (1xx other than 101) are whole messages: kHead (status
// 1xx) then kComplete, then the final response follows on the same parser.
// Next() with empty input delivers an event that needs no more bytes (the
// kComplete of a bodyless message right after its kHead), else kNeedMore.
//   kError     error() says why; the connection must be closed (after a 4xx
//              for requests: StatusForError()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ambit::http1 {

// Header names keep the case they arrived in; lookups are case-insensitive.
struct Header {
  std::string name;
  std::string value;
};
using Headers = std::vector<Header>;

// First value of `name` (case-insensitive), or nullopt.
std::optional<std::string_view> FindHeader(const Headers& h, std::string_view name);
// Removes every header called `name`; returns how many were removed.
size_t RemoveHeader(Headers& h, std::string_view name);
// Replaces all `name` headers with one `name: value`.
void SetHeader(Headers& h, std::string_view name, std::string_view value);
// True when a comma-separated header (e.g. Connection) lists `token`
// (case-insensitive, whitespace trimmed) in any of its instances.
bool HeaderHasToken(const Headers& h, std::string_view name, std::string_view token);

// How a message body is delimited.
enum class Framing : uint8_t {
  kNone,           // no body (GET without length, 204/304, HEAD responses)
  kContentLength,  // content_length bytes
  kChunked,        // Transfer-Encoding: chunked
  kUntilClose,     // response read until EOF (no length, not chunked)
};

struct RequestHead {
  std::string method;  // as sent ("GET")
  std::string target;  // request-target as sent ("/a?b", "host:443" for CONNECT)
  int version_minor = 1;  // HTTP/1.<minor>
  Headers headers;
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;  // when framing == kContentLength
  bool keep_alive = true;       // after this message (version + Connection)
  bool upgrade = false;         // Upgrade + Connection: upgrade, or CONNECT
  bool expect_continue = false; // Expect: 100-continue
  std::string_view Path() const;  // target up to '?' (whole target if none)
};

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version_minor = 1;
  Headers headers;
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;
  bool upgrade = false;  // 101 Switching Protocols (or 2xx to CONNECT)
};

enum class ParseError : uint8_t {
  kNone,
  kMalformed,         // syntax error in start line, headers or chunk framing
  kHeadTooLarge,      // head over Limits::max_head_bytes
  kTooManyHeaders,    // over Limits::max_headers
  kBadContentLength,  // unparsable/duplicate-conflicting Content-Length
  kBadTransferEncoding,  // TE other than chunked last, or with Content-Length
  kUnsupportedVersion,   // not HTTP/1.0 or HTTP/1.1
  kBadMethod,            // unknown method token
  kPrematureEof,         // Finish() inside a message that needs more bytes
  kTrailersTooLarge,     // trailers over max_head_bytes
};
std::string_view ParseErrorName(ParseError e);  // "malformed", "head_too_large", ...
// The response status a server answers a request parse error with
// (431 for kHeadTooLarge / kTooManyHeaders, 505 for kUnsupportedVersion,
// 400 otherwise — a Transfer-Encoding with a Content-Length, or one not
// ending in chunked, is a smuggling shape: 400 and close).
int StatusForError(ParseError e);

struct Limits {
  size_t max_head_bytes = 60 * 1024;  // start line + headers (Envoy's default)
  size_t max_headers = 100;
};

enum class Kind : uint8_t { kRequest, kResponse };

class Parser {
 public:
  enum class Event : uint8_t { kNeedMore, kHead, kBody, kTrailers, kComplete, kUpgrade, kError };
  struct Result {
    Event event = Event::kNeedMore;
    size_t consumed = 0;               // bytes of `input` used by this call
    std::span<const std::byte> body;   // kBody only: points into `input`
  };

  explicit Parser(Kind kind, Limits limits = {});
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Feeds bytes; see the event list above. After kError every call returns
  // kError with consumed == 0.
  Result Next(std::span<const std::byte> input);
  Result Next(std::string_view input) {
    return Next(std::as_bytes(std::span(input.data(), input.size())));
  }
  // The peer closed its side. Returns kComplete for a response framed
  // kUntilClose, kNeedMore when between messages (a clean close), kError
  // (kPrematureEof) inside a message.
  Result Finish();

  // Response parsing: the method of the request this response answers
  // (HEAD → no body; CONNECT 2xx → upgrade). Set before feeding the response.
  void SetRequestMethod(std::string_view method);

  const RequestHead& request() const;  // valid after kHead (Kind::kRequest)
  RequestHead TakeRequest();
  const ResponseHead& response() const;  // valid after kHead (Kind::kResponse)
  ResponseHead TakeResponse();
  Headers TakeTrailers();  // after kTrailers

  ParseError error() const;
  // Whether a message is in progress (some bytes of it consumed).
  bool mid_message() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- serializers: append to `out` ----

// "METHOD target HTTP/1.1\r\n" + headers + "\r\n". Headers are written as
// given (the caller sets Content-Length / Transfer-Encoding).
void AppendRequestHead(std::string& out, std::string_view method, std::string_view target,
                       const Headers& headers);
// "HTTP/1.1 status reason\r\n" + headers + "\r\n"; an empty reason uses
// ReasonPhrase(status).
void AppendResponseHead(std::string& out, int status, std::string_view reason,
                        const Headers& headers);
// One chunk ("<hex>\r\n<data>\r\n"); empty data appends nothing.
void AppendChunk(std::string& out, std::span<const std::byte> data);
// The last chunk with optional trailers ("0\r\n" trailers "\r\n").
void AppendLastChunk(std::string& out, const Headers& trailers = {});
std::string_view ReasonPhrase(int status);  // "OK", "Not Found", ... ("Unknown")

// RFC 9110 token / field-value checks, used before writing headers that came
// from another protocol (an h2 peer, config).
bool IsValidHeaderName(std::string_view name);
bool IsValidHeaderValue(std::string_view value);

}  // namespace ambit::http1
