#include "common/hbone/relay.h"

#include <sys/socket.h>

#include <vector>

#include "common/io/buffer_pool.h"

#include "common/http2/h2_types.h"

namespace ambit::hbone {

namespace {

// Relay buffers are taken only once the socket is readable and given back when
// a read comes back short (the socket is drained), so an idle connection holds
// no receive buffer. They start small and grow for bulk transfers, like
// ztunnel's copy.rs: 16 KiB, then 256 KiB after 1 MiB moved.
constexpr size_t kSmallBuffer = 16 << 10;
constexpr size_t kLargeBuffer = 256 << 10;
constexpr uint64_t kGrowAfter = 1 << 20;

// The buffer size for the next read after `moved` bytes.
size_t BufferFor(uint64_t moved) { return moved > kGrowAfter ? kLargeBuffer : kSmallBuffer; }

struct Direction {
  uint64_t bytes = 0;
  Status status;
};

io::Task<Direction> TcpToStream(io::Loop& loop, int fd, HboneStream& stream,
                                io::CancelScope& scope, RelayObserver* obs) {
  Direction d;
  io::PooledBuffer buf;
  for (;;) {
    StatusOr<size_t> n = size_t{0};
    if (buf.empty()) {
      Status ready = co_await loop.WaitReadable(fd, {.scope = &scope});
      if (!ready.ok()) n = ready;
    }
    if (n.ok()) {
      if (buf.size() != BufferFor(d.bytes)) buf = io::PooledBuffer::Get(BufferFor(d.bytes));
      n = co_await loop.Recv(fd, buf.span(), {.scope = &scope});
    }
    if (!n.ok()) {
      if (!scope.cancelled()) {
        stream.Reset(http2::kH2ConnectError);
        scope.Cancel();
      }
      d.status = n.status();
      co_return d;
    }
    if (*n == 0) {
      stream.CloseWrite();
      co_return d;
    }
    d.bytes += *n;
    if (obs) obs->OnUp(*n);
    Status st = co_await stream.Write(std::span<const std::byte>(buf.data(), *n), {.scope = &scope});
    if (!st.ok()) {
      if (!scope.cancelled()) {
        AbortOnClose(fd);
        scope.Cancel();
      }
      d.status = st;
      co_return d;
    }
    if (*n < buf.size()) buf.Release();  // drained: idle connections hold no buffer
  }
}

io::Task<Direction> StreamToTcp(io::Loop& loop, int fd, HboneStream& stream,
                                io::CancelScope& scope, RelayObserver* obs) {
  Direction d;
  for (;;) {
    auto chunk = co_await stream.Peek({.scope = &scope});
    if (!chunk.ok()) {
      if (!scope.cancelled()) {
        AbortOnClose(fd);
        scope.Cancel();
      }
      d.status = chunk.status();
      co_return d;
    }
    if (chunk->empty()) {
      (void)co_await loop.Shutdown(fd, SHUT_WR);
      co_return d;
    }
    auto n = co_await loop.Send(fd, *chunk, {.scope = &scope});
    if (!n.ok()) {
      if (!scope.cancelled()) {
        stream.Reset(http2::kH2ConnectError);
        scope.Cancel();
      }
      d.status = n.status();
      co_return d;
    }
    d.bytes += *n;
    if (obs) obs->OnDown(*n);
    stream.Consume(*n);
  }
}

io::Task<Direction> TcpToTcp(io::Loop& loop, int from, int to, io::CancelScope& scope,
                             RelayObserver* obs, bool up) {
  Direction d;
  io::PooledBuffer buf;
  for (;;) {
    StatusOr<size_t> n = size_t{0};
    if (buf.empty()) {
      Status ready = co_await loop.WaitReadable(from, {.scope = &scope});
      if (!ready.ok()) n = ready;
    }
    if (n.ok()) {
      if (buf.size() != BufferFor(d.bytes)) buf = io::PooledBuffer::Get(BufferFor(d.bytes));
      n = co_await loop.Recv(from, buf.span(), {.scope = &scope});
    }
    if (!n.ok()) {
      if (!scope.cancelled()) {
        AbortOnClose(to);
        scope.Cancel();
      }
      d.status = n.status();
      co_return d;
    }
    if (*n == 0) {
      (void)co_await loop.Shutdown(to, SHUT_WR);
      co_return d;
    }
    Status st = co_await io::SendAll(loop, to, std::span<const std::byte>(buf.data(), *n),
                                     {.scope = &scope});
    if (!st.ok()) {
      if (!scope.cancelled()) {
        AbortOnClose(from);
        scope.Cancel();
      }
      d.status = st;
      co_return d;
    }
    d.bytes += *n;
    if (obs) up ? obs->OnUp(*n) : obs->OnDown(*n);
    if (*n < buf.size()) buf.Release();  // drained: idle connections hold no buffer
  }
}

RelayResult Combine(const Direction& up, const Direction& down) {
  RelayResult r{up.bytes, down.bytes, absl::OkStatus()};
  // Report the error that started the teardown, not the cancellation it caused.
  if (!up.status.ok() && !absl::IsCancelled(up.status)) r.status = up.status;
  else if (!down.status.ok() && !absl::IsCancelled(down.status)) r.status = down.status;
  else if (!up.status.ok()) r.status = up.status;
  else if (!down.status.ok()) r.status = down.status;
  return r;
}

}  // namespace

void AbortOnClose(int fd) {
  linger l{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

io::Task<RelayResult> RelayTcpStream(io::Loop& loop, int tcp_fd, HboneStream& stream,
                                     io::CancelScope& scope, RelayObserver* observer) {
  auto [up, down] = co_await io::WhenAll(TcpToStream(loop, tcp_fd, stream, scope, observer),
                                         StreamToTcp(loop, tcp_fd, stream, scope, observer));
  RelayResult r = Combine(up, down);
  if (r.status.ok()) {
    // Both directions ended cleanly: let the queued tail and END_STREAM go out
    // before the stream is dropped.
    Status closed = co_await stream.AwaitClosed({.scope = &scope});
    if (!closed.ok()) r.status = closed;
  }
  co_return r;
}

io::Task<RelayResult> RelayTcpTcp(io::Loop& loop, int downstream_fd, int upstream_fd,
                                  io::CancelScope& scope, RelayObserver* observer) {
  auto [up, down] = co_await io::WhenAll(
      TcpToTcp(loop, downstream_fd, upstream_fd, scope, observer, true),
      TcpToTcp(loop, upstream_fd, downstream_fd, scope, observer, false));
  co_return Combine(up, down);
}

}  // namespace ambit::hbone
