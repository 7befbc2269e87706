// Helpers for io tests: loopback sockets and the backend parameterisation.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/io/loop.h"

namespace ambit::io::testing {

// Runs the enclosing TEST_CASE once per backend.
#define FOR_EACH_BACKEND(var)                                        \
  ::ambit::io::BackendKind var = ::ambit::io::BackendKind::kUring;   \
  SUBCASE("io_uring") { var = ::ambit::io::BackendKind::kUring; }    \
  SUBCASE("epoll") { var = ::ambit::io::BackendKind::kEpoll; }

inline std::unique_ptr<Loop> MakeLoop(BackendKind kind, base::Clock* clock = nullptr) {
  auto loop = Loop::Create({.backend = kind, .clock = clock, .name = "test"});
  REQUIRE_MESSAGE(loop.ok(), loop.status().ToString());
  REQUIRE((*loop)->backend_kind() == kind);
  return std::move(*loop);
}

inline int TcpSocket() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  return fd;
}

// Listening socket on 127.0.0.1:<ephemeral>; *addr receives the bound address.
inline int Listener(sockaddr_in* addr, int backlog = SOMAXCONN) {
  int fd = TcpSocket();
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(fd, backlog) == 0);
  socklen_t len = sizeof(a);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  *addr = a;
  return fd;
}

inline const sockaddr* Sa(const sockaddr_in& a) { return reinterpret_cast<const sockaddr*>(&a); }

inline std::span<const std::byte> Bytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

}  // namespace ambit::io::testing
