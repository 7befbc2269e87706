#include "common/admin/server.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <span>

#include "common/base/assertions.h"
#include "common/base/log.h"
#include "common/io/acceptor.h"
#include "common/net/socket.h"

namespace ambit::admin {

namespace {

constexpr size_t kReadChunk = 8 * 1024;
// Responses of pipelined requests are sent in batches of about this size, so
// a burst of small requests cannot make the output buffer grow unbounded.
constexpr size_t kOutputBatch = 256 * 1024;
constexpr std::string_view kUnknownFamily = "unknown";

std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

std::string JoinMethods(const std::vector<std::string>& methods) {
  std::string out;
  for (const auto& m : methods) {
    if (!out.empty()) out += ", ";
    out += m;
  }
  return out;
}

}  // namespace

struct HttpServer::Conn {
  io::CancelScope scope;
  Http1RequestParser parser;
  bool bad = false;  // the parser failed: answer what is queued, then 400 and close
  Status error;
};

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(io::Loop& loop,
                                                         HttpServerOptions options) {
  net::ListenerOptions lo;
  lo.address = options.address;
  lo.backlog = options.backlog;
  lo.nonblocking = true;
  auto fd = net::CreateTcpListener(lo);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        fmt::format("{} server: cannot listen on {}: {}", options.name,
                                    options.address.ToString(), std::string(fd.status().message())));
  }
  ASSIGN_OR_RETURN(net::SocketAddress bound, net::LocalAddress(fd->get()));
  return std::unique_ptr<HttpServer>(
      new HttpServer(loop, std::move(options), std::move(*fd), bound));
}

HttpServer::HttpServer(io::Loop& loop, HttpServerOptions options, net::Fd listener,
                       net::SocketAddress bound)
    : loop_(loop),
      options_(std::move(options)),
      listener_(std::move(listener)),
      address_(bound),
      stopped_(loop) {}

HttpServer::~HttpServer() {
  // Connection tasks reference this object: Stop() must have finished.
  AMBIT_ASSERT(live_ == 0 && !accepting_);
}

void HttpServer::Handle(std::string path, std::initializer_list<std::string_view> methods,
                        Handler fn) {
  Route route;
  for (std::string_view m : methods) route.methods.emplace_back(m);
  route.fn = std::move(fn);
  if (routes_.find(path) == routes_.end()) order_.push_back(path);
  routes_[std::move(path)] = std::move(route);
}

std::vector<std::string> HttpServer::paths() const { return order_; }

void HttpServer::Start() {
  if (started_ || stopping_) return;
  started_ = true;
  accepting_ = true;
  AMBIT_LOG(kInfo, "admin", "{} server listening on {}", options_.name, address_.ToString());
  loop_.Spawn(AcceptLoop());
}

io::Task<void> HttpServer::Stop() {
  if (!stopping_) {
    stopping_ = true;
    if (!started_) listener_.Reset();
    accept_scope_.Cancel();
    for (Conn* c : conns_) c->scope.Cancel();
    MaybeFinishStop();
  }
  (void)co_await stopped_.Wait();
}

void HttpServer::MaybeFinishStop() {
  if (stopping_ && !accepting_ && live_ == 0 && !stopped_.is_set()) stopped_.Set();
}

io::Task<void> HttpServer::AcceptLoop() {
  io::Acceptor acceptor(loop_, listener_.get());
  while (!stopping_) {
    StatusOr<io::Accepted> a = co_await acceptor.Next({.scope = &accept_scope_});
    if (!a.ok()) {
      if (stopping_) break;
      ++stats_.io_errors;
      AMBIT_LOG(kWarn, "admin", "{} server: accept on {} failed: {} (check RLIMIT_NOFILE)",
                options_.name, address_.ToString(), std::string(a.status().message()));
      (void)co_await loop_.Sleep(std::chrono::milliseconds(100), {.scope = &accept_scope_});
      continue;
    }
    if (live_ >= options_.max_connections) {
      ++stats_.rejected_connections;
      ::close(a->fd);
      continue;
    }
    ++stats_.accepted_connections;
    ++live_;
    loop_.Spawn(ServeConnection(a->fd));
  }
  co_await acceptor.Close();
  (void)co_await loop_.Close(listener_.Release());
  accepting_ = false;
  MaybeFinishStop();
}

io::Task<void> HttpServer::ServeConnection(int fd) {
  Conn conn;
  conns_.insert(&conn);
  if (stopping_) conn.scope.Cancel();  // spawned just before Stop(): only close
  const io::OpOptions opts{.scope = &conn.scope, .timeout = options_.idle_timeout};
  std::array<std::byte, kReadChunk> buf;
  while (!conn.scope.cancelled()) {
    if (!conn.parser.HasRequest() && !conn.bad) {
      StatusOr<size_t> n = co_await loop_.Recv(fd, buf, opts);
      if (!n.ok()) {
        if (absl::IsDeadlineExceeded(n.status())) ++stats_.idle_timeouts;
        if (!absl::IsCancelled(n.status()) && !absl::IsDeadlineExceeded(n.status())) {
          ++stats_.io_errors;
        }
        break;
      }
      if (*n == 0) break;  // peer closed
      Status st = conn.parser.Feed(
          std::string_view(reinterpret_cast<const char*>(buf.data()), *n));
      if (!st.ok()) {
        conn.bad = true;
        conn.error = std::move(st);
      }
    }
    std::string out;
    const bool keep = Answer(conn, &out);
    if (!out.empty()) {
      Status st = co_await io::SendAll(loop_, fd, Bytes(out), opts);
      if (!st.ok()) {
        if (!absl::IsCancelled(st)) ++stats_.io_errors;
        break;
      }
    }
    if (!keep) break;
  }
  (void)co_await loop_.Close(fd);
  conns_.erase(&conn);
  --live_;
  MaybeFinishStop();
}

bool HttpServer::Answer(Conn& conn, std::string* out) {
  while (conn.parser.HasRequest() && out->size() < kOutputBatch) {
    HttpRequest request = conn.parser.TakeRequest();
    HttpResponse response = Dispatch(request);
    const bool keep = request.keep_alive && !stopping_;
    *out += FormatResponse(response, keep);
    if (!keep) return false;
  }
  if (conn.bad && !conn.parser.HasRequest()) {
    ++stats_.bad_requests;
    HttpResponse r;
    r.status = absl::IsResourceExhausted(conn.error) ? 413 : 400;
    r.body = fmt::format("{}\n", std::string(conn.error.message()));
    *out += FormatResponse(r, false);
    return false;
  }
  return true;
}

HttpResponse HttpServer::Dispatch(const HttpRequest& request) {
  auto it = routes_.find(request.path);
  if (it == routes_.end()) {
    ++stats_.requests[std::string(kUnknownFamily)];
    ++stats_.not_found;
    HttpResponse r;
    r.status = 404;
    r.body = fmt::format("not found: {} (see / for the endpoints)\n", request.path);
    return r;
  }
  ++stats_.requests[it->first];
  const Route& route = it->second;
  if (!route.methods.empty() &&
      std::find(route.methods.begin(), route.methods.end(), request.method) ==
          route.methods.end()) {
    ++stats_.method_not_allowed;
    HttpResponse r;
    r.status = 405;
    r.body = fmt::format("method {} not allowed on {}: use {}\n", request.method, request.path,
                         JoinMethods(route.methods));
    r.headers.emplace_back("allow", JoinMethods(route.methods));
    return r;
  }
  return route.fn(request);
}

}  // namespace ambit::admin
