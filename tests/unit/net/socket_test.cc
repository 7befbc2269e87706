#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "common/net/netns.h"
#include "common/net/socket.h"

namespace ambit::net {
namespace {
using std::chrono::milliseconds;

int GetInt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  REQUIRE(::getsockopt(fd, level, name, &v, &len) == 0);
  return v;
}

bool IsRoot() { return ::geteuid() == 0; }

// Connects to `dst` (NAT REDIRECTed to the listener) and returns what
// OriginalDst says on the accepted socket.
StatusOr<OriginalDestination> RedirectedOriginalDst(int listener, const SocketAddress& dst) {
  ClientOptions co;
  co.family = dst.family();
  ASSIGN_OR_RETURN(Fd c, CreateTcpClient(co));
  RETURN_IF_ERROR(ConnectWithTimeout(c.get(), dst, milliseconds(2000)));
  ASSIGN_OR_RETURN(Fd s, AcceptWithTimeout(listener, milliseconds(2000)));
  return OriginalDst(s.get());
}
}  // namespace

TEST_CASE("Fd is move-only RAII") {
  int raw[2];
  REQUIRE(::pipe(raw) == 0);
  Fd a(raw[0]);
  Fd w(raw[1]);
  Fd b = std::move(a);
  CHECK_FALSE(a.valid());
  CHECK(b.get() == raw[0]);
  auto d = b.Dup();
  REQUIRE(d.ok());
  CHECK(d->get() != raw[0]);
  int released = b.Release();
  CHECK(released == raw[0]);
  ::close(released);
  d->Reset();
  CHECK_FALSE(d->valid());
}

TEST_CASE("listener on loopback: accept, addresses, options") {
  ListenerOptions o;
  o.address = *SocketAddress::Parse("127.0.0.1:0");
  o.reuse_port = true;
  auto l = CreateTcpListener(o);
  REQUIRE(l.ok());
  CHECK(GetInt(l->get(), SOL_SOCKET, SO_REUSEPORT) == 1);
  auto local = LocalAddress(l->get());
  REQUIRE(local.ok());
  CHECK(local->ip().ToString() == "127.0.0.1");
  CHECK(local->port() != 0);

  ClientOptions co;
  auto c = CreateTcpClient(co);
  REQUIRE(c.ok());
  REQUIRE(ConnectWithTimeout(c->get(), *local, milliseconds(2000)).ok());
  auto s = AcceptWithTimeout(l->get(), milliseconds(2000));
  REQUIRE(s.ok());
  CHECK(*PeerAddress(s->get()) == *LocalAddress(c->get()));

  REQUIRE(SetTcpNoDelay(s->get(), true).ok());
  CHECK(GetInt(s->get(), IPPROTO_TCP, TCP_NODELAY) == 1);
  REQUIRE(SetKeepalive(s->get(), KeepaliveOptions{}).ok());
  CHECK(GetInt(s->get(), SOL_SOCKET, SO_KEEPALIVE) == 1);
  CHECK(GetInt(s->get(), IPPROTO_TCP, TCP_KEEPIDLE) == 180);
  CHECK(GetInt(s->get(), IPPROTO_TCP, TCP_KEEPINTVL) == 180);
  CHECK(GetInt(s->get(), IPPROTO_TCP, TCP_KEEPCNT) == 9);

  // No NAT happened: OriginalDst falls back to (or equals) the local address.
  auto od = OriginalDst(s->get());
  REQUIRE(od.ok());
  CHECK(od->address == *local);

  CHECK(::write(c->get(), "ping", 4) == 4);
  char buf[8] = {};
  CHECK(::read(s->get(), buf, sizeof(buf)) == 4);
  CHECK(std::string(buf) == "ping");
}

TEST_CASE("dual-stack listener canonicalises v4-mapped peers") {
  ListenerOptions o;
  o.address = *SocketAddress::Parse("[::]:0");
  auto l = CreateTcpListener(o);
  if (!l.ok()) {
    MESSAGE("IPv6 unavailable: " << l.status().ToString());
    return;
  }
  CHECK(GetInt(l->get(), IPPROTO_IPV6, IPV6_V6ONLY) == 0);
  uint16_t port = LocalAddress(l->get())->port();
  auto c = CreateTcpClient({});
  REQUIRE(c.ok());
  REQUIRE(ConnectWithTimeout(c->get(), SocketAddress(IpAddress::LoopbackV4(), port),
                             milliseconds(2000))
              .ok());
  auto s = AcceptWithTimeout(l->get(), milliseconds(2000));
  REQUIRE(s.ok());
  auto peer = PeerAddress(s->get());
  REQUIRE(peer.ok());
  CHECK(peer->ip().is_v4());
  CHECK(peer->ip().ToString() == "127.0.0.1");
  auto od = OriginalDst(s->get());
  REQUIRE(od.ok());
  CHECK(od->address.ToString() == "127.0.0.1:" + std::to_string(port));
}

// The IPv6 original-destination path for real: a private netns (this thread
// only), nat OUTPUT REDIRECT for a v6 and a v4 destination to one dual-stack
// [::] listener, as the in-pod 15001 listener sees them.
TEST_CASE("OriginalDst: IP6T_SO_ORIGINAL_DST for v6, SO_ORIGINAL_DST for v4 on a dual-stack socket") {
  if (!IsRoot() || std::system("command -v ip6tables >/dev/null && command -v iptables >/dev/null") != 0) {
    MESSAGE("needs root, iptables and ip6tables: skipped");
    return;
  }
  std::string failure;
  std::optional<OriginalDestination> v6, v4;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      failure = "unshare(CLONE_NEWNET) failed";
      return;
    }
    ListenerOptions o;
    o.address = *SocketAddress::Parse("[::]:0");
    auto l = CreateTcpListener(o);
    if (!l.ok()) {
      failure = l.status().ToString();
      return;
    }
    std::string port = std::to_string(LocalAddress(l->get())->port());
    // std::system forks from this thread, so the commands run in its netns.
    std::string setup =
        "ip link set lo up && ip -6 route add fd00:99::/64 dev lo && ip route add 10.99.0.0/24 dev lo"
        " && ip6tables -w -t nat -A OUTPUT -p tcp -d fd00:99::1 --dport 80 -j REDIRECT --to-ports " + port +
        " && iptables -w -t nat -A OUTPUT -p tcp -d 10.99.0.1 --dport 81 -j REDIRECT --to-ports " + port;
    if (std::system(setup.c_str()) != 0) {
      failure = "netns setup failed: " + setup;
      return;
    }
    auto a = RedirectedOriginalDst(l->get(), *SocketAddress::Parse("[fd00:99::1]:80"));
    auto b = RedirectedOriginalDst(l->get(), *SocketAddress::Parse("10.99.0.1:81"));
    if (!a.ok() || !b.ok()) {
      failure = (a.ok() ? b.status() : a.status()).ToString();
      return;
    }
    v6 = *a;
    v4 = *b;
  });
  t.join();
  REQUIRE_MESSAGE(failure.empty(), failure);
  CHECK(v6->from_conntrack);
  CHECK(v6->address.ToString() == "[fd00:99::1]:80");
  CHECK(v6->address.ip().is_v6());
  CHECK(v4->from_conntrack);
  CHECK(v4->address.ToString() == "10.99.0.1:81");
  CHECK(v4->address.ip().is_v4());
}

TEST_CASE("bind conflict reports the address and a hint") {
  ListenerOptions o;
  o.address = *SocketAddress::Parse("127.0.0.1:0");
  auto a = CreateTcpListener(o);
  REQUIRE(a.ok());
  o.address = *LocalAddress(a->get());
  auto b = CreateTcpListener(o);
  REQUIRE_FALSE(b.ok());
  std::string msg(b.status().message());
  CHECK(msg.find(o.address.ToString()) != std::string::npos);
  CHECK(msg.find("another process listens") != std::string::npos);
  CHECK(absl::IsAlreadyExists(b.status()));
}

TEST_CASE("privileged options: mark, transparent, freebind") {
  auto c = CreateTcpClient({});
  REQUIRE(c.ok());
  Status mark = SetMark(c->get(), kZtunnelMark);
  Status tr = SetTransparent(c->get(), true);
  if (!IsRoot()) {
    CHECK(absl::IsPermissionDenied(mark));
    CHECK(absl::IsPermissionDenied(tr));
    return;
  }
  REQUIRE(mark.ok());
  CHECK(*GetMark(c->get()) == 0x539u);
  REQUIRE(tr.ok());
  CHECK(GetInt(c->get(), IPPROTO_IP, IP_TRANSPARENT) == 1);
  REQUIRE(SetFreebind(c->get(), true).ok());
  CHECK(GetInt(c->get(), IPPROTO_IP, IP_FREEBIND) == 1);

  ListenerOptions o;
  o.address = *SocketAddress::Parse("127.0.0.1:0");
  o.transparent = Transparent::kRequired;
  o.mark = kZtunnelMark;
  auto l = CreateTcpListener(o);
  REQUIRE(l.ok());
  CHECK(GetInt(l->get(), IPPROTO_IP, IP_TRANSPARENT) == 1);
  CHECK(*GetMark(l->get()) == 0x539u);
}

TEST_CASE("NetnsHandle: open errors and identity") {
  auto missing = NetnsHandle::Open("ambit-no-such-netns-xyz");
  REQUIRE_FALSE(missing.ok());
  CHECK(std::string(missing.status().message()).find("no such netns") != std::string::npos);
  CHECK(std::string(missing.status().message()).find("/var/run/netns/ambit-no-such-netns-xyz") !=
        std::string::npos);

  auto not_ns = NetnsHandle::Open("/etc/hostname");
  if (!not_ns.ok()) {
    CHECK(std::string(not_ns.status().message()).find("not a network namespace") !=
          std::string::npos);
  }

  auto a = NetnsHandle::Current();
  REQUIRE(a.ok());
  auto b = NetnsHandle::Open("/proc/self/ns/net");
  REQUIRE(b.ok());
  CHECK(a->SameAs(*b));
  auto d = a->Dup();
  REQUIRE(d.ok());
  CHECK(d->SameAs(*a));
  CHECK(d->fd() != a->fd());
}

TEST_CASE("NetnsRunner creates sockets via its queue") {
  auto self = NetnsHandle::Current();
  REQUIRE(self.ok());
  NetnsRunner runner;
  auto make = [] {
    ListenerOptions o;
    o.address = *SocketAddress::Parse("127.0.0.1:0");
    return CreateTcpListener(o);
  };
  auto fd = runner.Run(*self, make);
  auto one_shot = CreateSocketInNetns(*self, make);
  if (!IsRoot()) {
    REQUIRE_FALSE(fd.ok());
    CHECK(std::string(fd.status().message()).find("CAP_SYS_ADMIN") != std::string::npos);
    return;
  }
  REQUIRE(fd.ok());
  REQUIRE(one_shot.ok());
  CHECK(LocalAddress(fd->get())->port() != 0);
  CHECK(runner.completed() == 1);
  auto failing = runner.Run(*self, []() -> StatusOr<Fd> {
    return absl::InternalError("boom");
  });
  CHECK(failing.status().message() == "boom");
}

}  // namespace ambit::net
