// Fuzz target: a TLS server engine (mutual TLS 1.3, SPIFFE verification)
// fed arbitrary ciphertext as if from a client. Input layout:
//   byte 0: feed chunk size (0 = all at once); rest: ciphertext.
// The certificate is issued once per process by the built-in CA.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "common/identity/builtin_ca.h"
#include "common/identity/identity.h"
#include "common/tls/context.h"
#include "common/tls/engine.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace ambit;

std::shared_ptr<const tls::TlsContext> ServerContext() {
  static std::shared_ptr<const tls::TlsContext> ctx = [] {
    auto ca = identity::BuiltinCa::Generate();
    FUZZ_CHECK(ca.ok());
    auto id = identity::Identity::Parse("spiffe://cluster.local/ns/demo/sa/server");
    FUZZ_CHECK(id.ok());
    auto bundle = ca->Issue(*id);
    FUZZ_CHECK(bundle.ok());
    auto made = tls::MakeServerContext(*bundle);
    if (!made.ok()) {
      std::fprintf(stderr, "server context: %s\n", std::string(made.status().message()).c_str());
      std::abort();
    }
    return *made;
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto ctx = ServerContext();
  auto engine_or = tls::TlsEngine::NewServer(ctx);
  FUZZ_CHECK(engine_or.ok());
  tls::TlsEngine& engine = **engine_or;

  size_t chunk = data[0] == 0 ? size : data[0];
  std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  std::byte plain[4096];
  bool failed = false;
  while (!rest.empty() && !failed) {
    auto piece = rest.first(std::min(chunk, rest.size()));
    rest = rest.subspan(piece.size());
    engine.FeedCiphertext(piece);
    if (!engine.handshake_done()) {
      auto hs = engine.Handshake();
      if (hs == tls::HandshakeState::kFailed) {
        FUZZ_CHECK(!engine.error().ok());
        failed = true;
      }
    }
    if (engine.handshake_done()) {
      // Unreachable without a client certificate signed by our CA, but
      // kept so a corpus that gets this far exercises the record layer.
      auto r = engine.ReadPlaintext(plain);
      if (r.state == tls::ReadState::kFailed) failed = true;
    }
    engine.ConsumeCiphertext(engine.PendingCiphertext().size());
  }
  if (!failed) engine.Shutdown();
  engine.ConsumeCiphertext(engine.PendingCiphertext().size());
  return 0;
}
