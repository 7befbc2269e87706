// ambit-fake-istio: a fake istiod (xDS + CA over TLS) and fake istio-cni node
// agents (ZDS) in one process, driven over stdin/stdout with JSON lines for
// netns tests (tests/netns/istio_env.py). See tests/support/README.md.
//
//   ambit-fake-istio --listen 10.44.0.100 --dir DIR [--xds-port 15012] [--ca-port 15013]
//
// First stdout line: {"ok":true,"xds":"IP:15012","ca":"IP:15013","root":"DIR/root-cert.pem"}
// (or {"ok":false,"error":...} and exit 1); DIR/root-key.pem holds the root key (tests sign
// CRLs with it). Then one response line per
// request line until {"cmd":"quit"} or EOF on stdin.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include "tests/support/fake_istio.h"

namespace {

using ambit::testing::FakeIstio;
using ambit::testing::FakeIstioOptions;

int Usage(const std::string& why) {
  FakeIstio::Json out = {{"ok", false},
                         {"error", why + " (usage: ambit-fake-istio --listen IP --dir DIR "
                                         "[--xds-port N] [--ca-port N]; 0 = ephemeral)"}};
  std::cout << out.dump() << std::endl;
  return 2;
}

bool ParsePort(const char* s, int& port) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 0 || v > 65535) return false;
  port = static_cast<int>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed ZDS peer is an error reply, not a kill
  FakeIstioOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) return Usage("flag " + std::string(arg) + " needs a value");
    const char* value = argv[++i];
    if (arg == "--listen") {
      options.listen_ip = value;
    } else if (arg == "--dir") {
      options.dir = value;
    } else if (arg == "--xds-port") {
      if (!ParsePort(value, options.xds_port)) return Usage("bad --xds-port");
    } else if (arg == "--ca-port") {
      if (!ParsePort(value, options.ca_port)) return Usage("bad --ca-port");
    } else {
      return Usage("unknown flag " + std::string(arg));
    }
  }
  if (options.dir.empty()) return Usage("--dir is required");
  auto fake = FakeIstio::Start(options);
  if (!fake.ok()) {
    FakeIstio::Json out = {{"ok", false}, {"error", std::string(fake.status().message())}};
    std::cout << out.dump() << std::endl;
    return 1;
  }
  std::cout << (*fake)->Hello().dump() << std::endl;
  std::string line;
  while (!(*fake)->quit_requested() && std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::cout << (*fake)->HandleLine(line) << std::endl;
  }
  return 0;
}
