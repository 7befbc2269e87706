// HttpServer: the small HTTP/1.1 server behind the admin (15000), metrics
// (15020) and readiness (15021) ports, on one io::Loop.
//
//   auto server = HttpServer::Create(loop, {.address = *SocketAddress::Parse("127.0.0.1:0")});
//   (*server)->Handle("/healthz/ready", {"GET"}, [](const HttpRequest&) { ... });
//   (*server)->Start();                 // accepts on the loop
//   ...
//   co_await (*server)->Stop();         // cancels connections, waits for completions
//
// One coroutine per connection: keep-alive, pipelining, 400 on malformed
// input (then close), 404 for unknown paths, 405 (with `allow`) when a route
// restricts methods, an idle timeout, bounded buffers. Handlers run on the
// loop thread and must not block. Everything but construction is loop-thread
// only; the server must be stopped (and Stop() awaited) before destruction.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/admin/http1.h"
#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/io/cancel.h"
#include "common/io/event.h"
#include "common/io/loop.h"
#include "common/net/address.h"
#include "common/net/fd.h"

namespace ambit::admin {

using Handler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  net::SocketAddress address;  // port 0 picks one; [::] is dual-stack
  std::string name = "admin";  // in logs
  base::Duration idle_timeout = std::chrono::seconds(30);
  size_t max_connections = 256;  // more are closed at once (counted)
  int backlog = 128;
};

// Counters, read on the loop thread (or after the loop stopped).
struct HttpServerStats {
  std::map<std::string, uint64_t> requests;  // by route path; "unknown" for 404s
  uint64_t bad_requests = 0;        // 400: malformed or oversized input
  uint64_t not_found = 0;           // 404
  uint64_t method_not_allowed = 0;  // 405
  uint64_t idle_timeouts = 0;
  uint64_t rejected_connections = 0;  // over max_connections
  uint64_t accepted_connections = 0;
  uint64_t io_errors = 0;
};

class HttpServer {
 public:
  // Binds and listens (so the port is known at once); does not accept yet.
  static StatusOr<std::unique_ptr<HttpServer>> Create(io::Loop& loop, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes an exact path. `methods` empty: any method; else others get 405.
  void Handle(std::string path, std::initializer_list<std::string_view> methods, Handler fn);
  void Handle(std::string path, Handler fn) { Handle(std::move(path), {}, std::move(fn)); }
  // Registered paths in order (for the index page).
  std::vector<std::string> paths() const;

  // Starts accepting on the loop (spawns the accept task).
  void Start();
  // Stops accepting, cancels every connection and resolves once all of their
  // operations completed and the listener is closed. Idempotent. Responses
  // still being written are cut: a /quitquitquit drain should stop the admin
  // server last, not from inside the handler.
  io::Task<void> Stop();

  const net::SocketAddress& address() const { return address_; }
  uint16_t port() const { return address_.port(); }
  size_t active_connections() const { return live_; }
  const HttpServerStats& stats() const { return stats_; }

 private:
  struct Route {
    std::vector<std::string> methods;
    Handler fn;
  };
  struct Conn;

  HttpServer(io::Loop& loop, HttpServerOptions options, net::Fd listener,
             net::SocketAddress bound);
  io::Task<void> AcceptLoop();
  io::Task<void> ServeConnection(int fd);
  // Answers the queued requests (up to a batch bound); false: close after `out`.
  bool Answer(Conn& conn, std::string* out);
  HttpResponse Dispatch(const HttpRequest& request);
  void MaybeFinishStop();

  io::Loop& loop_;
  HttpServerOptions options_;
  net::Fd listener_;
  net::SocketAddress address_;
  std::map<std::string, Route> routes_;
  std::vector<std::string> order_;
  std::unordered_set<Conn*> conns_;
  io::CancelScope accept_scope_;
  io::Event stopped_;
  bool started_ = false;
  bool accepting_ = false;
  size_t live_ = 0;  // connection tasks spawned and not finished (some maybe not started)
  bool stopping_ = false;
  HttpServerStats stats_;
};

}  // namespace ambit::admin
