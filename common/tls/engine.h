// TlsEngine: one TLS connection as a sans-I/O state machine. The caller feeds
// ciphertext received from the socket, drives the handshake, reads and writes
// plaintext, and sends whatever PendingCiphertext() holds. No syscalls here.
//
//   engine->FeedCiphertext(bytes_from_socket);
//   switch (engine->Handshake()) { ... }
//   send(engine->PendingCiphertext()); engine->ConsumeCiphertext(sent);
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/identity/identity.h"
#include "common/identity/ossl_ptr.h"
#include "common/tls/context.h"
#include "common/tls/peer_state.h"
#include "common/tls/queue_bio.h"

namespace ambit::tls {

enum class HandshakeState { kDone, kNeedMore, kFailed };
enum class ReadState { kData, kNeedMore, kClosed, kFailed };

struct ReadResult {
  ReadState state;
  size_t bytes = 0;  // plaintext bytes copied (only with kData)
};

class TlsEngine {
 public:
  static StatusOr<std::unique_ptr<TlsEngine>> NewServer(std::shared_ptr<const TlsContext> ctx);
  // `expected`: the server must present one of these identities.
  static StatusOr<std::unique_ptr<TlsEngine>> NewClient(std::shared_ptr<const TlsContext> ctx,
                                                        std::vector<identity::Identity> expected);
  TlsEngine(const TlsEngine&) = delete;
  TlsEngine& operator=(const TlsEngine&) = delete;

  // Queues ciphertext received from the peer.
  void FeedCiphertext(std::span<const std::byte> data);
  // Zero-copy alternative: receive straight into the engine's input buffer
  // (at least `n` bytes), then commit what the socket read returned.
  std::span<std::byte> CiphertextInputBuffer(size_t n) { return queues_.in.Prepare(n); }
  void CommitCiphertextInput(size_t k) { queues_.in.Commit(k); }

  // Advances the handshake. After kDone, peer_identity() and alpn() are set.
  // On kFailed, failure()/error() say why and PendingCiphertext() may hold an
  // alert worth sending before closing.
  HandshakeState Handshake();

  // Decrypts into `out`. kNeedMore: feed more ciphertext; kClosed: the peer
  // sent close_notify; kFailed: see error(). Reading can queue ciphertext
  // (a TLS 1.3 KeyUpdate reply, an alert): check PendingCiphertext() after.
  ReadResult ReadPlaintext(std::span<std::byte> out);
  // Encrypts all of `data` into records (up to 16 KiB each) appended to the
  // pending ciphertext. The pending buffer is unbounded: apply watermarks on
  // PendingCiphertext().size() before writing more.
  Status WritePlaintext(std::span<const std::byte> data);

  // Ciphertext to send, contiguous; valid until the next call on the engine.
  std::span<const std::byte> PendingCiphertext() const { return queues_.out.Readable(); }
  void ConsumeCiphertext(size_t n) { queues_.out.Consume(n); }
  // Zero-copy hand-off: moves all pending ciphertext into `into` (which must
  // be empty) and continues in `into`'s old storage. The caller sends from
  // `into` while the engine keeps producing records.
  void TakeCiphertext(ByteQueue& into) { into.Swap(queues_.out); }

  // Queues close_notify.
  void Shutdown();

  bool handshake_done() const { return done_; }
  const std::optional<identity::Identity>& peer_identity() const { return peer_; }
  std::string_view alpn() const;
  std::string_view protocol_version() const;  // "TLSv1.3"
  std::string_view cipher() const;            // "TLS_AES_256_GCM_SHA384"
  TlsFailure failure() const { return failure_; }
  const Status& error() const { return error_; }

 private:
  TlsEngine(std::shared_ptr<const TlsContext> ctx, std::vector<identity::Identity> expected);
  Status Init();
  HandshakeState Fail(TlsFailure f, std::string_view detail);
  HandshakeState FailFromSsl(int ret);
  HandshakeState FinishHandshake();

  std::shared_ptr<const TlsContext> ctx_;
  QueuePair queues_;
  PeerState state_;
  identity::SslPtr ssl_;
  std::optional<identity::Identity> peer_;
  bool done_ = false;
  TlsFailure failure_ = TlsFailure::kNone;
  Status error_;
};

}  // namespace ambit::tls
