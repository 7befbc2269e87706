// capture_probe: a tiny stand-in for the agent's in-pod listeners, used by the
// netns tests. Built on common/net, so the tests exercise the real helpers.
//
//   capture_probe listen --netns PATH [--transparent] [--seconds N] PORT...
//     Creates listeners on 0.0.0.0:PORT inside the pod netns via NetnsRunner
//     (SO_MARK 0x539, reuseport, IP_TRANSPARENT when asked), prints "ready",
//     then for every accepted connection prints and sends back one line:
//     "accept port=P peer=IP:PORT orig=IP:PORT conntrack=0|1".
//   capture_probe spoof --netns PATH --source IP --connect IP:PORT
//     In the pod netns: socket with IP_TRANSPARENT+IP_FREEBIND+SO_MARK 0x539,
//     bound to the foreign source IP, connects, sends "hello\n" and prints
//     the first line of the reply.
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/net/netns.h"
#include "common/net/socket.h"

namespace {

using ambit::Status;
using ambit::StatusOr;
using namespace ambit::net;  // NOLINT: a test tool

int Die(const Status& s) {
  std::fprintf(stderr, "capture_probe: %s\n", s.ToString().c_str());
  return 1;
}

std::string Arg(std::vector<std::string>& args, const std::string& name) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == name) {
      std::string v = args[i + 1];
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
      return v;
    }
  }
  return "";
}

bool Flag(std::vector<std::string>& args, const std::string& name) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name) {
      args.erase(args.begin() + static_cast<long>(i));
      return true;
    }
  }
  return false;
}

std::string Describe(int fd, uint16_t port) {
  auto peer = PeerAddress(fd);
  auto orig = OriginalDst(fd);
  return "accept port=" + std::to_string(port) +
         " peer=" + (peer.ok() ? peer->ToString() : "?") +
         " orig=" + (orig.ok() ? orig->address.ToString() : "?") +
         " conntrack=" + (orig.ok() && orig->from_conntrack ? "1" : "0") + "\n";
}

int Listen(std::vector<std::string> args) {
  std::string netns = Arg(args, "--netns");
  bool transparent = Flag(args, "--transparent");
  std::string secs = Arg(args, "--seconds");
  int seconds = secs.empty() ? 30 : std::atoi(secs.c_str());
  auto ns = NetnsHandle::Open(netns);
  if (!ns.ok()) return Die(ns.status());
  NetnsRunner runner;
  std::vector<Fd> listeners;
  std::vector<uint16_t> ports;
  for (const auto& p : args) {
    ListenerOptions o;
    o.address = SocketAddress(IpAddress::AnyV4(), static_cast<uint16_t>(std::atoi(p.c_str())));
    o.reuse_port = true;
    o.mark = kZtunnelMark;
    o.transparent = transparent ? Transparent::kRequired : Transparent::kBestEffort;
    auto fd = runner.Run(*ns, [o] { return CreateTcpListener(o); });
    if (!fd.ok()) return Die(fd.status());
    listeners.push_back(std::move(*fd));
    ports.push_back(o.address.port());
  }
  std::printf("ready\n");
  std::fflush(stdout);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> pfds;
    for (const auto& l : listeners) pfds.push_back({l.get(), POLLIN, 0});
    if (::poll(pfds.data(), pfds.size(), 200) <= 0) continue;
    for (size_t i = 0; i < pfds.size(); ++i) {
      if (!(pfds[i].revents & POLLIN)) continue;
      auto c = AcceptWithTimeout(listeners[i].get(), std::chrono::milliseconds(100));
      if (!c.ok()) continue;
      std::string line = Describe(c->get(), ports[i]);
      std::fputs(line.c_str(), stdout);
      std::fflush(stdout);
      (void)!::write(c->get(), line.data(), line.size());
    }
  }
  return 0;
}

int Spoof(std::vector<std::string> args) {
  auto ns = NetnsHandle::Open(Arg(args, "--netns"));
  if (!ns.ok()) return Die(ns.status());
  auto source = IpAddress::Parse(Arg(args, "--source"));
  if (!source.ok()) return Die(source.status());
  auto to = SocketAddress::Parse(Arg(args, "--connect"));
  if (!to.ok()) return Die(to.status());
  auto fd = CreateSocketInNetns(*ns, [&] {
    ClientOptions o;
    o.source = SocketAddress(*source, 0);
    o.transparent = true;
    o.mark = kZtunnelMark;
    return CreateTcpClient(o);
  });
  if (!fd.ok()) return Die(fd.status());
  Status s = ConnectWithTimeout(fd->get(), *to, std::chrono::milliseconds(3000));
  if (!s.ok()) return Die(s);
  (void)!::write(fd->get(), "hello\n", 6);
  pollfd p{fd->get(), POLLIN, 0};
  if (::poll(&p, 1, 3000) <= 0) return Die(absl::DeadlineExceededError("no reply within 3 s"));
  char buf[256] = {};
  ssize_t n = ::read(fd->get(), buf, sizeof(buf) - 1);
  if (n <= 0) return Die(absl::UnavailableError("connection closed without a reply"));
  std::printf("reply %s", buf);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fprintf(stderr, "usage: capture_probe listen|spoof ...\n");
    return 2;
  }
  std::string cmd = args.front();
  args.erase(args.begin());
  if (cmd == "listen") return Listen(args);
  if (cmd == "spoof") return Spoof(args);
  std::fprintf(stderr, "capture_probe: unknown command %s\n", cmd.c_str());
  return 2;
}
