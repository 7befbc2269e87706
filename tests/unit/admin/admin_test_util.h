// Test helpers: an HttpServer on its own thread (real clock), and a raw
// blocking loopback client that reads responses by content-length.
#pragma once

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/admin/server.h"
#include "common/io/loop.h"

namespace ambit::admin::testing {

#define ADMIN_FOR_EACH_BACKEND(var)                                 \
  ::ambit::io::BackendKind var = ::ambit::io::BackendKind::kUring;  \
  SUBCASE("io_uring") { var = ::ambit::io::BackendKind::kUring; }   \
  SUBCASE("epoll") { var = ::ambit::io::BackendKind::kEpoll; }

inline io::Task<void> StopAndQuit(HttpServer* server, io::Loop* loop) {
  co_await server->Stop();
  loop->Stop();
}

// Runs a Loop and an HttpServer on a thread; Stop() (or the destructor) stops
// the server, waits for it and reports what was left.
class ServerThread {
 public:
  using Setup = std::function<void(HttpServer&)>;

  ServerThread(io::BackendKind kind, Setup setup, std::string address = "127.0.0.1:0") {
    std::promise<uint16_t> port;
    auto port_future = port.get_future();
    thread_ = std::thread([this, kind, setup, address, &port] {
      auto loop = io::Loop::Create({.backend = kind, .name = "admin-test"});
      if (!loop.ok()) {
        port.set_value(0);
        return;
      }
      auto server = HttpServer::Create(**loop, {.address = *net::SocketAddress::Parse(address)});
      if (!server.ok()) {
        port.set_value(0);
        return;
      }
      loop_ = loop->get();
      server_ = server->get();
      setup(**server);
      (*server)->Start();
      port.set_value((*server)->port());
      (*loop)->Run();
      stats_ = (*server)->stats();
      left_tasks_ = (*loop)->live_tasks();
      left_ops_ = (*loop)->ops_in_flight();
      server->reset();
      loop->reset();
    });
    REQUIRE(port_future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    port_ = port_future.get();
    REQUIRE(port_ != 0);
  }
  ~ServerThread() { Stop(); }

  uint16_t port() const { return port_; }
  // Runs `fn` on the loop thread and waits for it.
  template <typename Fn>
  auto OnLoop(Fn fn) {
    std::promise<decltype(fn())> p;
    auto f = p.get_future();
    loop_->Post([&] { p.set_value(fn()); });
    REQUIRE(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    return f.get();
  }
  size_t ActiveConnections() { return OnLoop([this] { return server_->active_connections(); }); }

  // Stops and joins; false if that did not finish within `timeout`.
  bool Stop(std::chrono::seconds timeout = std::chrono::seconds(10)) {
    if (!thread_.joinable()) return true;
    loop_->Post([this] { loop_->Spawn(StopAndQuit(server_, loop_)); });
    auto done = std::async(std::launch::async, [this] { thread_.join(); });
    return done.wait_for(timeout) == std::future_status::ready;
  }
  const HttpServerStats& stats() const { return stats_; }
  size_t left_tasks() const { return left_tasks_; }
  size_t left_ops() const { return left_ops_; }

 private:
  std::thread thread_;
  io::Loop* loop_ = nullptr;
  HttpServer* server_ = nullptr;
  uint16_t port_ = 0;
  HttpServerStats stats_;
  size_t left_tasks_ = 99;
  size_t left_ops_ = 99;
};

// A blocking loopback TCP client for raw bytes.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void Send(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
      REQUIRE(n > 0);
      s.remove_prefix(static_cast<size_t>(n));
    }
  }
  // Reads more bytes into the buffer; false on EOF, error or timeout.
  bool ReadMore(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(buf, static_cast<size_t>(n));
    return true;
  }
  // One complete response (head + content-length body), or nullopt.
  std::optional<std::string> ReadResponse() {
    while (true) {
      size_t head_end = buf_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t cl = buf_.find("content-length: ");
        size_t len = cl < head_end ? std::stoul(buf_.substr(cl + 16)) : 0;
        size_t total = head_end + 4 + len;
        if (buf_.size() >= total) {
          std::string out = buf_.substr(0, total);
          buf_.erase(0, total);
          return out;
        }
      }
      if (!ReadMore()) return std::nullopt;
    }
  }
  // True once the server closed (EOF) within the timeout.
  bool WaitClosed(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_ && std::chrono::steady_clock::now() < deadline) ReadMore(timeout);
    return eof_;
  }
  const std::string& buffered() const { return buf_; }

 private:
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

}  // namespace ambit::admin::testing
