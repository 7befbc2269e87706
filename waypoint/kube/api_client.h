// A blocking HTTP/1.1 client for the Kubernetes API server, run on the
// watcher's own threads (never on a loop): HTTPS verified against the
// in-cluster CA (or plain http:// for tests), a bearer token re-read from its
// file on every request (projected tokens rotate), Content-Length and chunked
// bodies, streamed to a callback for watches. One request per connection.
// Interrupt() (any thread) unblocks a read in progress: Stop uses it.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace ambit::waypoint::kube {

struct ApiServerOptions {
  std::string host;        // KUBERNETES_SERVICE_HOST (IPv6 without brackets)
  uint16_t port = 443;     // KUBERNETES_SERVICE_PORT
  bool tls = true;         // false only for an explicit http:// URL (tests)
  std::string ca_file;     // the in-cluster CA bundle
  std::string token_file;  // the service-account token (re-read per request)
  std::chrono::milliseconds connect_timeout{5000};
  // A watch stream with no bytes for this long is dropped (the server sends
  // bookmarks well within it).
  std::chrono::milliseconds read_timeout{90000};
  std::string ToString() const;  // "https://10.0.0.1:443"
};

// OpenSSL writes with write(2): a peer that went away raises SIGPIPE. The
// threads that use an ApiClient call this first (EPIPE is then an error).
void BlockSigpipeOnThisThread();

// "https://host:port", "http://host:port", "[::1]:6443" (https), "host" (443).
StatusOr<ApiServerOptions> ParseApiServerUrl(std::string_view url);

struct ApiResponse {
  int status = 0;
  std::string content_type;
  std::string body;  // unless streamed
};

// Streamed body bytes; return false to stop reading (the request then ends OK).
using BodyChunk = std::function<bool(std::string_view)>;

class ApiClient {
 public:
  explicit ApiClient(ApiServerOptions options) : options_(std::move(options)) {}

  // method + target ("/apis/...?..."); `on_body` null: the body is collected
  // (bounded by `max_body`) into the response. With `on_body`, a 2xx body is
  // streamed to it and a non-2xx body still collected.
  StatusOr<ApiResponse> Request(std::string_view method, std::string_view target,
                                std::string_view content_type, std::string_view body,
                                const BodyChunk& on_body, size_t max_body);
  // Unblocks the current request of this client (it fails with Cancelled);
  // later requests fail too until Reset().
  void Interrupt();
  void Reset() { interrupted_.store(false); }
  const ApiServerOptions& options() const { return options_; }

 private:
  ApiServerOptions options_;
  std::mutex mu_;
  int active_fd_ = -1;  // guarded by mu_
  std::atomic<bool> interrupted_{false};
};

}  // namespace ambit::waypoint::kube
