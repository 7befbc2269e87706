// Test helper: dial an HBONE server on 127.0.0.1:port and finish the mTLS
// handshake, expecting one server identity. Shared by the loopback, faults,
// python-h2 and nghttpx tests.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/hbone/conn.h"
#include "common/identity/identity.h"
#include "common/io/loop.h"
#include "common/net/address.h"
#include "common/net/socket.h"
#include "common/tls/context.h"

namespace ambit::testing {

inline io::Task<StatusOr<std::shared_ptr<hbone::HboneConn>>> DialLoopbackHbone(
    io::Loop& loop, uint16_t port, std::shared_ptr<const tls::TlsContext> ctx,
    identity::Identity expected) {
  auto fd = net::CreateTcpClient({});
  if (!fd.ok()) co_return fd.status();
  auto addr = *net::SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  sockaddr_storage ss{};
  socklen_t len = addr.ToSockaddr(&ss);
  Status st = co_await loop.Connect(fd->get(), reinterpret_cast<sockaddr*>(&ss), len,
                                    {.timeout = std::chrono::seconds(5)});
  if (!st.ok()) co_return st;
  std::vector<identity::Identity> ids{std::move(expected)};
  hbone::ConnOptions opts;
  co_return co_await hbone::Handshake(loop, std::move(*fd), std::move(ctx), std::move(ids),
                                                 opts);
}

}  // namespace ambit::testing
