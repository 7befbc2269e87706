// A small blocking HTTP/1.1 client for tools and tests (ambitctl talks to the
// agent's admin API with it). One request per connection, `connection: close`,
// responses parsed with common/http1. Not for the data path.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/status.h"

namespace ambit::admin {

struct HttpUrl {
  std::string host;  // as written ("127.0.0.1", "::1", "localhost")
  uint16_t port = 80;
  std::string path;  // "" or "/prefix" (no trailing slash)
  std::string ToString() const;
};
// "http://127.0.0.1:15000", "http://[::1]:15000/", "localhost:15000".
StatusOr<HttpUrl> ParseHttpUrl(std::string_view url);

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string_view Header(std::string_view lower_name) const;
};

struct ClientRequest {
  std::string method = "GET";
  std::string target = "/";  // path and query, appended to the URL's path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{5000};  // connect, and each read/write
  size_t max_response_bytes = 64 * 1024 * 1024;
};

// Errors: Unavailable "connect 127.0.0.1:15000: Connection refused",
// DeadlineExceeded on timeouts, DataLoss/InvalidArgument on bad responses.
StatusOr<ClientResponse> Fetch(const HttpUrl& url, const ClientRequest& request);

}  // namespace ambit::admin
