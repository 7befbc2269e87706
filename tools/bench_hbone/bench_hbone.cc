// ambit-bench-hbone: single-tunnel bulk throughput over loopback, in one run:
//   raw TCP          sender -> sink
//   Ambit HBONE      sender -> client relay -> HboneConn (TLS 1.3 + h2 CONNECT)
//                    -> server relay -> sink   (RelayTcpStream on both sides)
//   stunnel4 pair    sender -> stunnel client -> mTLS -> stunnel server -> sink
// Both tunnel paths have the same three TCP hops and two relays.
// Reports Gbit/s and CPU seconds per GB (all processes of the path), as a
// markdown table. Interleaved runs, median of 3. Bounded: --bytes per run.
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/base/log.h"
#include "common/hbone/conn.h"
#include "common/hbone/relay.h"
#include "common/hbone/stream.h"
#include "common/identity/builtin_ca.h"
#include "common/identity/cert_files.h"
#include "common/io/loop.h"
#include "common/net/socket.h"
#include "common/tls/context.h"

using namespace ambit;
using namespace std::chrono_literals;

namespace {

double ProcCpu(pid_t pid) {  // utime+stime in seconds
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return 0;
  std::vector<std::string> fields;
  size_t pos = rp + 2;
  while (pos < s.size()) {
    size_t e = s.find(' ', pos);
    fields.push_back(s.substr(pos, e - pos));
    if (e == std::string::npos) break;
    pos = e + 1;
  }
  if (fields.size() < 13) return 0;
  return (std::stod(fields[11]) + std::stod(fields[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Result {
  double gbps = 0, cpu_per_gb = 0;
};

// Blocking sink on a thread: reads until EOF. Gives up when no connection
// arrives within 60 s (a failed handshake upstream), so the bench cannot hang.
void SinkThread(int lfd, size_t* got) {
  pollfd p{lfd, POLLIN, 0};
  if (poll(&p, 1, 60000) != 1) {
    std::fprintf(stderr, "sink: no connection within 60 s\n");
    return;
  }
  int c = accept(lfd, nullptr, nullptr);
  if (c < 0) return;
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = read(c, buf.data(), buf.size())) > 0) *got += static_cast<size_t>(n);
  close(c);
}

void SendBlocking(int fd, size_t bytes) {
  std::vector<char> buf(1 << 20, 'x');
  size_t sent = 0;
  while (sent < bytes) {
    ssize_t n = write(fd, buf.data(), std::min(buf.size(), bytes - sent));
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
}

int ListenAny(uint16_t* port) {
  auto l = net::CreateTcpListener({.address = *net::SocketAddress::Parse("127.0.0.1:0"),
                                   .backlog = 16, .nonblocking = false});
  *port = net::LocalAddress(l->get())->port();
  return l->Release();
}

int ConnectBlocking(uint16_t port) {
  auto c = net::CreateTcpClient({.nonblocking = false});
  (void)net::ConnectWithTimeout(c->get(), *net::SocketAddress::Parse("127.0.0.1:" + std::to_string(port)),
                                std::chrono::milliseconds(5000));
  return c->Release();
}

Result RawTcp(size_t bytes) {
  uint16_t port;
  int lfd = ListenAny(&port);
  size_t got = 0;
  double cpu0 = SelfCpu();
  auto t0 = std::chrono::steady_clock::now();
  std::thread sink(SinkThread, lfd, &got);
  int c = ConnectBlocking(port);
  SendBlocking(c, bytes);
  sink.join();
  close(c);
  close(lfd);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double gb = static_cast<double>(got) / 1e9;
  return {gb * 8 / secs, (SelfCpu() - cpu0) / gb};
}

// HBONE, with the same hops as the stunnel4 pair: the sender writes into a
// loopback TCP socket that the client side relays into an HBONE stream
// (RelayTcpStream, as the agent's outbound path), and the server side relays
// the stream into a TCP socket to the sink (as the agent's inbound path).
//   sender -TCP-> client loop [relay -> TLS 1.3 + h2 CONNECT] -TCP->
//     server loop [h2 -> relay] -TCP-> sink
// Client and server loops run on their own threads; sender and sink are
// blocking threads, as for raw TCP and stunnel4.
io::Task<void> ServerRelay(io::Loop& loop, std::unique_ptr<hbone::HboneStream> stream, uint16_t sink_port,
                           bool* done) {
  auto fd = net::CreateTcpClient({});
  auto addr = *net::SocketAddress::Parse("127.0.0.1:" + std::to_string(sink_port));
  sockaddr_storage ss{};
  socklen_t len = addr.ToSockaddr(&ss);
  if (!fd.ok() || !(co_await loop.Connect(fd->get(), reinterpret_cast<sockaddr*>(&ss), len)).ok()) {
    (void)hbone::RespondConnect(*stream, 503);
    *done = true;
    co_return;
  }
  (void)hbone::RespondConnect(*stream, 200);
  io::CancelScope scope;
  hbone::RelayResult r = co_await hbone::RelayTcpStream(loop, fd->get(), *stream, scope, nullptr);
  if (!r.status.ok()) std::fprintf(stderr, "server relay: %s\n", r.status.ToString().c_str());
  (void)co_await stream->AwaitClosed({.timeout = 10s});
  *done = true;
}

io::Task<void> ServerSide(io::Loop& loop, int lfd, std::shared_ptr<const tls::TlsContext> ctx, uint16_t sink_port,
                          bool* done, std::shared_ptr<hbone::HboneConn>* keep) {
  auto a = co_await loop.Accept(lfd);
  if (!a.ok()) {
    *done = true;
    co_return;
  }
  hbone::ConnOptions opts;
  hbone::HboneConn::StreamHandler handler = [&loop, sink_port, done](std::unique_ptr<hbone::HboneStream> s,
                                                                     const http2::H2Headers&) {
    loop.Spawn(ServerRelay(loop, std::move(s), sink_port, done));
  };
  auto conn = co_await hbone::Accept(loop, net::Fd(a->fd), ctx, opts, handler);
  if (!conn.ok()) {
    std::fprintf(stderr, "server handshake: %s\n", conn.status().ToString().c_str());
    *done = true;
    co_return;
  }
  *keep = *conn;
}

io::Task<void> ClientSide(io::Loop& loop, int front_lfd, uint16_t port, std::shared_ptr<const tls::TlsContext> ctx,
                          identity::Identity server) {
  auto sender = co_await loop.Accept(front_lfd);
  if (!sender.ok()) co_return;
  net::Fd tcp(sender->fd);
  auto fd = net::CreateTcpClient({});
  auto addr = *net::SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  sockaddr_storage ss{};
  socklen_t len = addr.ToSockaddr(&ss);
  if (!(co_await loop.Connect(fd->get(), reinterpret_cast<sockaddr*>(&ss), len)).ok()) co_return;
  std::vector<identity::Identity> ids{server};
  hbone::ConnOptions opts;
  auto conn = co_await hbone::Handshake(loop, std::move(*fd), ctx, std::move(ids), opts);
  if (!conn.ok()) {
    std::fprintf(stderr, "client handshake: %s\n", conn.status().ToString().c_str());
    co_return;
  }
  http2::H2Headers h;
  auto stream = co_await hbone::OpenConnect(**conn, "127.0.0.1:9", h, 5s);
  if (!stream.ok()) {
    std::fprintf(stderr, "CONNECT: %s\n", stream.status().ToString().c_str());
    co_return;
  }
  io::CancelScope scope;
  hbone::RelayResult r = co_await hbone::RelayTcpStream(loop, tcp.get(), **stream, scope, nullptr);
  if (!r.status.ok()) std::fprintf(stderr, "client relay: %s\n", r.status.ToString().c_str());
  (void)co_await (*stream)->AwaitClosed({.timeout = 10s});
  (*conn)->Close(absl::OkStatus());
}

Result Hbone(size_t bytes, std::shared_ptr<const tls::TlsContext> cctx,
             std::shared_ptr<const tls::TlsContext> sctx, identity::Identity sid, io::BackendKind kind) {
  uint16_t sink_port, port, front_port;
  int sink_lfd = ListenAny(&sink_port);
  int lfd = ListenAny(&port);
  int front_lfd = ListenAny(&front_port);
  size_t got = 0;
  bool done = false;
  double cpu0 = SelfCpu();
  auto t0 = std::chrono::steady_clock::now();
  std::thread sink(SinkThread, sink_lfd, &got);
  std::thread server([&] {
    auto loop = io::Loop::Create({.backend = kind, .name = "srv"});
    std::shared_ptr<hbone::HboneConn> conn;
    (*loop)->Spawn(ServerSide(**loop, lfd, sctx, sink_port, &done, &conn));
    (*loop)->RunUntil([&] { return done; }, 60s);
    if (conn) conn->Close(absl::OkStatus());
    conn.reset();
    (*loop)->RunUntil([&] { return (*loop)->live_tasks() == 0; }, 5s);
  });
  std::thread client([&] {
    auto loop = io::Loop::Create({.backend = kind, .name = "cli"});
    (*loop)->BlockOn(ClientSide(**loop, front_lfd, port, cctx, sid));
    (*loop)->RunUntil([&] { return (*loop)->live_tasks() == 0; }, 5s);
  });
  int fd = ConnectBlocking(front_port);
  SendBlocking(fd, bytes);
  sink.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = SelfCpu() - cpu0;
  client.join();
  server.join();
  close(fd);
  close(front_lfd);
  close(lfd);
  close(sink_lfd);
  double gb = static_cast<double>(got) / 1e9;
  if (got != bytes) std::fprintf(stderr, "hbone: sink got %zu of %zu bytes\n", got, bytes);
  if (got == 0) return {};
  return {gb * 8 / secs, cpu / gb};
}

pid_t Spawn(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execvp(a[0], a.data());
    _exit(127);
  }
  return pid;
}

Result Stunnel(size_t bytes, const std::string& dir, uint16_t base) {
  uint16_t sink_port;
  int lfd = ListenAny(&sink_port);
  const uint16_t tls_port = base, front_port = static_cast<uint16_t>(base + 1);
  auto write_conf = [&](const std::string& name, const std::string& body) {
    std::ofstream(dir + "/" + name) << body;
  };
  std::string common = "foreground = yes\npid =\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n";
  write_conf("srv.conf", common + "[s]\naccept = 127.0.0.1:" + std::to_string(tls_port) +
                             "\nconnect = 127.0.0.1:" + std::to_string(sink_port) + "\ncert = " + dir +
                             "/server/cert-chain.pem\nkey = " + dir + "/server/key.pem\nCAfile = " + dir +
                             "/server/root-cert.pem\nverifyChain = yes\nrequireCert = yes\n"
                             "sslVersionMin = TLSv1.3\n");
  write_conf("cli.conf", common + "[c]\nclient = yes\naccept = 127.0.0.1:" + std::to_string(front_port) +
                             "\nconnect = 127.0.0.1:" + std::to_string(tls_port) + "\ncert = " + dir +
                             "/client/cert-chain.pem\nkey = " + dir + "/client/key.pem\nCAfile = " + dir +
                             "/client/root-cert.pem\nverifyChain = yes\nsslVersionMin = TLSv1.3\n");
  pid_t s = Spawn({"stunnel4", dir + "/srv.conf"});
  pid_t c = Spawn({"stunnel4", dir + "/cli.conf"});
  for (int i = 0; i < 100; ++i) {  // wait until the front port accepts (bounded)
    auto probe = net::CreateTcpClient({.nonblocking = false});
    if (net::ConnectWithTimeout(probe->get(), *net::SocketAddress::Parse("127.0.0.1:" + std::to_string(front_port)),
                                std::chrono::milliseconds(100)).ok()) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  // The probe connection reached the sink through stunnel: accept and drop it.
  { int p = accept(lfd, nullptr, nullptr); if (p >= 0) close(p); }
  size_t got = 0;
  double cpu0 = SelfCpu() + ProcCpu(s) + ProcCpu(c);
  auto t0 = std::chrono::steady_clock::now();
  std::thread sink(SinkThread, lfd, &got);
  int fd = ConnectBlocking(front_port);
  SendBlocking(fd, bytes);
  sink.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = SelfCpu() + ProcCpu(s) + ProcCpu(c) - cpu0;
  close(fd);
  close(lfd);
  kill(s, SIGTERM);
  kill(c, SIGTERM);
  waitpid(s, nullptr, 0);
  waitpid(c, nullptr, 0);
  double gb = static_cast<double>(got) / 1e9;
  if (got == 0) return {};
  return {gb * 8 / secs, cpu / gb};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t bytes = size_t{1} << 30;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--bytes") == 0) bytes = std::stoull(argv[i + 1]);
  }
  signal(SIGPIPE, SIG_IGN);
  base::ProcessLogger().Reset(base::LogLevel::kWarn);
  auto ca = identity::BuiltinCa::Generate();
  auto sid = *identity::Identity::Parse("spiffe://cluster.local/ns/bench/sa/server");
  auto cid = *identity::Identity::Parse("spiffe://cluster.local/ns/bench/sa/client");
  auto sb = *ca->Issue(sid);
  auto cb = *ca->Issue(cid);
  auto cctx = *tls::MakeClientContext(cb);
  auto sctx = *tls::MakeServerContext(sb);
  std::string dir = std::filesystem::temp_directory_path() / ("ambit-bench-hbone-" + std::to_string(getpid()));
  (void)identity::WriteBundleToDir(sb, dir + "/server");
  (void)identity::WriteBundleToDir(cb, dir + "/client");
  bool have_stunnel = system("command -v stunnel4 >/dev/null 2>&1") == 0;

  const char* names[] = {"raw TCP (loopback)", "Ambit HBONE relay pair, io_uring", "Ambit HBONE relay pair, epoll", "stunnel4 mTLS pair"};
  std::vector<std::vector<Result>> runs(4);
  for (int r = 0; r < 3; ++r) {  // interleaved A B C D, three times
    runs[0].push_back(RawTcp(bytes));
    runs[1].push_back(Hbone(bytes, cctx, sctx, sid, io::BackendKind::kUring));
    runs[2].push_back(Hbone(bytes, cctx, sctx, sid, io::BackendKind::kEpoll));
    if (have_stunnel) runs[3].push_back(Stunnel(bytes, dir, static_cast<uint16_t>(41000 + r * 10)));
  }
  std::filesystem::remove_all(dir);
  std::printf("### hbone: single tunnel over loopback, %zu MiB per run (median of 3)\n\n", bytes >> 20);
  std::printf("| path | Gbit/s | CPU s per GB | runs (Gbit/s) |\n|---|---|---|---|\n");
  double ambit_gbps = 0, stunnel_gbps = 0;
  for (int i = 0; i < 4; ++i) {
    if (runs[i].empty()) {
      std::printf("| %s | n/a | n/a | stunnel4 not installed |\n", names[i]);
      continue;
    }
    std::vector<double> g, c;
    std::string all;
    for (auto& x : runs[i]) {
      g.push_back(x.gbps);
      c.push_back(x.cpu_per_gb);
      char b[32];
      std::snprintf(b, sizeof(b), "%s%.2f", all.empty() ? "" : ", ", x.gbps);
      all += b;
    }
    if (i == 1) ambit_gbps = Median(g);
    if (i == 3) stunnel_gbps = Median(g);
    std::printf("| %s | %.2f | %.2f | %s |\n", names[i], Median(g), Median(c), all.c_str());
  }
  if (stunnel_gbps > 0) std::printf("\nAmbit HBONE / stunnel4 throughput ratio: %.2fx\n", ambit_gbps / stunnel_gbps);
  return 0;
}
