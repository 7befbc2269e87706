// ambit-bench-tls: what one TlsEngine pair costs, next to the physical bound
// measured in the same run, for both HBONE TLS 1.3 suites:
//   bulk   client engine -> server engine, 16 KiB records, in memory and over
//          an AF_UNIX socketpair; vs `openssl speed -evp aes-256-gcm` for
//          TLS_AES_256_GCM_SHA384 (what HBONE negotiates by default: the server
//          prefers it) and `-evp aes-128-gcm` for TLS_AES_128_GCM_SHA256 (what a
//          peer that prefers AES-128 gets). TlsOptions has no suite knob, so the
//          bench pins one suite per context pair with SSL_CTX_set_ciphersuites on
//          the real contexts and checks the negotiated suite;
//   hs/s   full mTLS handshakes per second (ECDSA P-256, X25519, default suite),
//          one core.
// Rates use this thread's CPU time (per core), so a busy machine does not
// skew them against `openssl speed` (which also counts CPU time).
// Interleaved, median of 3. Prints a markdown table. --bytes N: bytes per bulk run.
#include <sys/socket.h>
#include <openssl/ssl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/base/log.h"
#include "common/identity/builtin_ca.h"
#include "common/tls/context.h"
#include "common/tls/engine.h"

using namespace ambit;
// CPU time of this thread: rates are per core even on a busy machine.
struct Clock {
  using time_point = std::chrono::duration<double>;
  static time_point now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return time_point(static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9);
  }
};

namespace {

struct Ctx {
  std::shared_ptr<const tls::TlsContext> client, server;
  identity::Identity server_id;
};

void Pump(tls::TlsEngine& from, tls::TlsEngine& to) {
  auto ct = from.PendingCiphertext();
  if (ct.empty()) return;
  to.FeedCiphertext(ct);
  from.ConsumeCiphertext(ct.size());
}

bool Handshake(const Ctx& c, std::unique_ptr<tls::TlsEngine>* cli, std::unique_ptr<tls::TlsEngine>* srv) {
  auto a = tls::TlsEngine::NewClient(c.client, {c.server_id});
  auto b = tls::TlsEngine::NewServer(c.server);
  if (!a.ok() || !b.ok()) return false;
  *cli = std::move(*a);
  *srv = std::move(*b);
  for (int i = 0; i < 20; ++i) {
    auto hc = (*cli)->Handshake();
    Pump(**cli, **srv);
    auto hs = (*srv)->Handshake();
    Pump(**srv, **cli);
    if (hc == tls::HandshakeState::kFailed || hs == tls::HandshakeState::kFailed) return false;
    if (hc == tls::HandshakeState::kDone && hs == tls::HandshakeState::kDone) return true;
  }
  return false;
}

double HandshakesPerSec(const Ctx& c, double seconds) {
  auto t0 = Clock::now();
  int n = 0;
  while ((Clock::now() - t0).count() < seconds) {
    std::unique_ptr<tls::TlsEngine> a, b;
    if (!Handshake(c, &a, &b)) return 0;
    // The server finishes on the client's Finished; make the client read
    // the server's post-handshake records so both sides did all the work.
    std::vector<std::byte> tmp(64);
    (void)a->ReadPlaintext(tmp);
    ++n;
  }
  return n / (Clock::now() - t0).count();
}

double BulkMemory(const Ctx& c, size_t bytes) {
  std::unique_ptr<tls::TlsEngine> a, b;
  if (!Handshake(c, &a, &b)) return 0;
  std::vector<std::byte> buf(256 << 10, std::byte{'x'}), out(256 << 10);
  size_t moved = 0;
  auto t0 = Clock::now();
  while (moved < bytes) {
    (void)a->WritePlaintext(buf);
    Pump(*a, *b);
    for (;;) {
      auto r = b->ReadPlaintext(out);
      if (r.state != tls::ReadState::kData) break;
      moved += r.bytes;
    }
  }
  return static_cast<double>(moved) * 8 / 1e9 / (Clock::now() - t0).count();
}

// Over a socketpair: encrypt, write(2), read(2), decrypt — single thread.
double BulkSocket(const Ctx& c, size_t bytes) {
  std::unique_ptr<tls::TlsEngine> a, b;
  if (!Handshake(c, &a, &b)) return 0;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
  int sz = 4 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
  std::vector<std::byte> buf(256 << 10, std::byte{'x'}), out(256 << 10), wire(1 << 20);
  size_t moved = 0;
  auto t0 = Clock::now();
  while (moved < bytes) {
    (void)a->WritePlaintext(buf);
    auto ct = a->PendingCiphertext();
    size_t off = 0;
    while (off < ct.size()) {
      ssize_t w = write(sv[0], ct.data() + off, ct.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
      ssize_t r;
      while ((r = recv(sv[1], wire.data(), wire.size(), MSG_DONTWAIT)) > 0) {
        b->FeedCiphertext(std::span<const std::byte>(wire.data(), static_cast<size_t>(r)));
      }
    }
    a->ConsumeCiphertext(ct.size());
    for (;;) {
      auto rr = b->ReadPlaintext(out);
      if (rr.state != tls::ReadState::kData) break;
      moved += rr.bytes;
    }
  }
  close(sv[0]);
  close(sv[1]);
  return static_cast<double>(moved) * 8 / 1e9 / (Clock::now() - t0).count();
}

// `openssl speed -evp <evp> -bytes 16384 -seconds 1`: last column is bytes
// per second in thousands.
double OpensslSpeedGbps(const std::string& evp) {
  const std::string cmd =
      "openssl speed -evp " + evp + " -bytes 16384 -seconds 1 2>/dev/null | tail -1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 0;
  char line[512] = {};
  std::string s = fgets(line, sizeof(line), p) ? line : "";
  pclose(p);
  auto pos = s.rfind(' ');
  auto k = s.find_last_of("0123456789.");
  if (pos == std::string::npos || k == std::string::npos) return 0;
  std::string num = s.substr(s.find_last_of(' ', k) + 1);
  double kbytes = std::atof(num.c_str());
  return kbytes * 1000 * 8 / 1e9;
}

// One TLS 1.3 suite: its contexts (pinned to the suite unless `pin` is false)
// and the `openssl speed` cipher that bounds it.
struct Suite {
  const char* name;  // "TLS_AES_256_GCM_SHA384"
  const char* evp;   // "aes-256-gcm"
  Ctx ctx;
  std::vector<double> speed, mem, sock;
};

// The suite a fresh handshake on `c` negotiates ("" if it fails).
std::string NegotiatedSuite(const Ctx& c) {
  std::unique_ptr<tls::TlsEngine> a, b;
  if (!Handshake(c, &a, &b)) return "";
  return std::string(a->cipher());
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t bytes = size_t{1} << 30;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--bytes") == 0 && i + 1 < argc) {
      bytes = std::stoull(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--bytes N]   (bytes per bulk run, default 1 GiB)\n",
                   argv[0]);
      return 2;
    }
  }
  base::ProcessLogger().Reset(base::LogLevel::kError);
  auto ca = identity::BuiltinCa::Generate();
  auto sid = *identity::Identity::Parse("spiffe://cluster.local/ns/bench/sa/server");
  auto cid = *identity::Identity::Parse("spiffe://cluster.local/ns/bench/sa/client");
  auto make = [&](const char* pin) {
    Ctx c{*tls::MakeClientContext(*ca->Issue(cid)), *tls::MakeServerContext(*ca->Issue(sid)), sid};
    if (pin != nullptr) {
      (void)SSL_CTX_set_ciphersuites(c.client->ssl_ctx(), pin);
      (void)SSL_CTX_set_ciphersuites(c.server->ssl_ctx(), pin);
    }
    return c;
  };
  const Ctx deflt = make(nullptr);  // exactly what the agent builds
  const std::string default_suite = NegotiatedSuite(deflt);
  std::vector<Suite> suites = {
      {"TLS_AES_256_GCM_SHA384", "aes-256-gcm", make("TLS_AES_256_GCM_SHA384"), {}, {}, {}},
      {"TLS_AES_128_GCM_SHA256", "aes-128-gcm", make("TLS_AES_128_GCM_SHA256"), {}, {}, {}},
  };
  for (const Suite& s : suites) {
    const std::string got = NegotiatedSuite(s.ctx);
    if (got != s.name) {
      std::fprintf(stderr, "pinning %s failed: negotiated '%s'\n", s.name, got.c_str());
      return 1;
    }
  }
  std::vector<double> hs;
  for (int r = 0; r < 3; ++r) {
    for (Suite& s : suites) {
      s.speed.push_back(OpensslSpeedGbps(s.evp));
      s.mem.push_back(BulkMemory(s.ctx, bytes));
      s.sock.push_back(BulkSocket(s.ctx, bytes));
    }
    hs.push_back(HandshakesPerSec(deflt, 1.0));
  }
  auto runs = [](const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += (s.empty() ? "" : ", ") + std::to_string(x).substr(0, 6);
    return s;
  };
  std::printf("### tls: one TlsEngine pair, one core (median of 3, %zu MiB per bulk run)\n\n", bytes >> 20);
  std::printf("| measure | value | runs |\n|---|---|---|\n");
  for (const Suite& s : suites) {
    std::printf("| openssl speed %s, 16 KiB blocks (bound for %s) | %.2f Gbit/s | %s |\n", s.evp,
                s.name, Median(s.speed), runs(s.speed).c_str());
    std::printf("| TlsEngine pair, %s, in memory (encrypt + decrypt) | %.2f Gbit/s | %s |\n",
                s.name, Median(s.mem), runs(s.mem).c_str());
    std::printf("| TlsEngine pair, %s, over a socketpair | %.2f Gbit/s | %s |\n", s.name,
                Median(s.sock), runs(s.sock).c_str());
  }
  std::printf("| full mTLS handshakes (both sides on one core, %s) | %.0f /s | %s |\n",
              default_suite.c_str(), Median(hs), runs(hs).c_str());
  std::printf("\ndefault contexts negotiate %s.\n", default_suite.c_str());
  for (const Suite& s : suites) {
    if (Median(s.speed) > 0) {
      std::printf("%s: in-memory pair / bound: %.2f (the pair does encrypt AND decrypt: 0.5 is the bound)\n",
                  s.name, Median(s.mem) / Median(s.speed));
    }
  }
  return 0;
}
