// Sans-I/O HTTP/1.1 request parsing and response formatting for the small
// admin, metrics and readiness servers, on the shared codec (common/http1).
// Bytes in, whole requests out.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/status.h"
#include "common/http1/codec.h"

namespace ambit::admin {

struct HttpRequest {
  std::string method;   // "GET"
  std::string target;   // "/logging?level=debug"
  std::string path;     // "/logging"
  std::string query;    // "level=debug"
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;

  std::string_view Header(std::string_view lower_name) const;
  // Value of `key` in the query string (percent-decoded); empty if absent.
  std::string QueryParam(std::string_view key) const;
  bool HasQueryParam(std::string_view key) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Serialises a response; `keep_alive` false adds "connection: close".
std::string FormatResponse(const HttpResponse& response, bool keep_alive);
std::string_view ReasonPhrase(int status);

class Http1RequestParser {
 public:
  // Requests whose head or body exceed these are rejected (admin endpoints
  // take no large input).
  static constexpr size_t kMaxHeadBytes = 16 * 1024;
  static constexpr size_t kMaxBodyBytes = 64 * 1024;

  Http1RequestParser();
  Http1RequestParser(const Http1RequestParser&) = delete;
  Http1RequestParser& operator=(const Http1RequestParser&) = delete;

  // Consumes bytes; completed requests queue up (pipelining). An error means
  // the connection must answer 400 and close.
  Status Feed(std::string_view data);
  bool HasRequest() const { return !ready_.empty(); }
  HttpRequest TakeRequest();

 private:
  http1::Parser parser_{http1::Kind::kRequest,
                        http1::Limits{.max_head_bytes = kMaxHeadBytes, .max_headers = 100}};
  HttpRequest current_;
  std::deque<HttpRequest> ready_;
  Status error_;  // sticky: the connection answers 400 and closes
};

}  // namespace ambit::admin
