#include "common/http2/stream_transport.h"

#include "common/base/error.h"

namespace ambit::http2 {

StreamTransport::StreamTransport(std::unique_ptr<io::ByteStream> owned, io::ByteStream* carrier,
                                 net::SocketAddress peer, net::SocketAddress local,
                                 std::optional<identity::Identity> peer_identity)
    : owned_(std::move(owned)),
      carrier_(owned_ ? owned_.get() : carrier),
      peer_(peer),
      local_(local),
      identity_(std::move(peer_identity)) {}

StreamTransport::~StreamTransport() { Release(); }

std::unique_ptr<StreamTransport> StreamTransport::Owning(std::unique_ptr<io::ByteStream> s,
                                                         net::SocketAddress peer,
                                                         net::SocketAddress local,
                                                         std::optional<identity::Identity> id) {
  return std::make_unique<StreamTransport>(std::move(s), nullptr, peer, local, std::move(id));
}

io::Task<StatusOr<std::span<const std::byte>>> StreamTransport::Read(io::CancelScope& scope) {
  if (handed_out_ > 0) {
    carrier_->Consume(handed_out_);
    handed_out_ = 0;
  }
  auto chunk = co_await carrier_->Peek({.scope = &scope});
  if (!chunk.ok()) co_return base::WithReason(chunk.status(), base::ErrorReason::kConnClosed);
  handed_out_ = chunk->size();
  co_return *chunk;
}

Status StreamTransport::Stage(std::span<const std::byte> bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
  return absl::OkStatus();
}

io::Task<Status> StreamTransport::Flush(io::CancelScope& scope) {
  while (!out_.empty()) {
    // Frames staged while the write waits go to the other buffer.
    sending_.swap(out_);
    Status st = co_await carrier_->Write(sending_, {.scope = &scope});
    sending_.clear();
    if (!st.ok()) co_return base::WithReason(st, base::ErrorReason::kConnClosed);
  }
  if (shutdown_ && !released_) carrier_->CloseWrite();
  co_return absl::OkStatus();
}

void StreamTransport::Shutdown() { shutdown_ = true; }

void StreamTransport::Release() {
  if (released_) return;
  released_ = true;
  if (!shutdown_) carrier_->Abort();
  owned_.reset();
}

}  // namespace ambit::http2
