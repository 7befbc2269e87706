// TlsTransport: TLS 1.3 (the sans-I/O tls::TlsEngine) over a connected TCP
// socket on an io::Loop — the transport of an HBONE connection.
//
// Reading: recv straight into the engine's ciphertext input queue (no copy),
// hand out decrypted plaintext (read_buffer bytes at a time). Writing: frames
// are encrypted into records as they are staged; Flush() swaps the pending
// ciphertext out (no copy) and sends it with one send per batch. The input queue and plaintext
// buffer are left uninitialised, so an idle connection only touches the
// pages its small records use.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>

#include "common/base/clock.h"
#include "common/http2/transport.h"
#include "common/io/loop.h"
#include "common/net/fd.h"
#include "common/tls/byte_queue.h"
#include "common/tls/engine.h"

namespace ambit::http2 {

class TlsTransport final : public Transport {
 public:
  TlsTransport(io::Loop& loop, net::Fd fd, std::unique_ptr<tls::TlsEngine> engine,
               size_t read_buffer);
  ~TlsTransport() override;

  // Runs the handshake to completion (or failure) within `timeout`, and
  // requires ALPN h2. Errors carry ErrorReason kTlsHandshake / kTlsTimeout.
  io::Task<Status> Handshake(base::Duration timeout, io::CancelScope& scope);

  io::Task<StatusOr<std::span<const std::byte>>> Read(io::CancelScope& scope) override;
  Status Stage(std::span<const std::byte> bytes) override;
  size_t staged() const override;
  io::Task<Status> Flush(io::CancelScope& scope) override;
  void Shutdown() override;
  void Release() override;

  const net::SocketAddress& peer_address() const override { return peer_; }
  const net::SocketAddress& local_address() const override { return local_; }
  const std::optional<identity::Identity>& peer_identity() const override {
    return engine_->peer_identity();
  }
  const tls::TlsEngine& engine() const { return *engine_; }

 private:
  std::span<std::byte> pspan() { return {pbuf_.get(), read_buffer_}; }

  io::Loop& loop_;
  net::Fd fd_;
  std::unique_ptr<tls::TlsEngine> engine_;
  size_t read_buffer_;
  std::unique_ptr<std::byte[]> pbuf_;
  tls::ByteQueue wq_;  // ciphertext being sent; the engine fills the other buffer meanwhile
  net::SocketAddress peer_;
  net::SocketAddress local_;
};

}  // namespace ambit::http2
