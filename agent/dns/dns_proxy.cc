#include "agent/dns/dns_proxy.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "common/base/log.h"
#include "common/io/acceptor.h"
#include "common/io/event.h"
#include "common/net/socket.h"

namespace ambit::dns {

namespace {

constexpr size_t kMaxInflightPerPod = 1024;  // forwarded queries waiting per pod and worker
constexpr int kReadsPerWake = 64;

struct PendingAnswer {
  explicit PendingAnswer(io::Loop& l) : done(l) {}
  io::Event done;
  UpstreamResult result;
};

std::vector<uint8_t>& ReceiveBuffer() {
  static thread_local std::vector<uint8_t> buf(kMaxMessageSize);
  return buf;
}

}  // namespace

StatusOr<ListenAddress> ListenAddress::Parse(std::string_view text) {
  ListenAddress a;
  if (text.starts_with("localhost:")) {
    int port = std::atoi(std::string(text.substr(10)).c_str());
    if (port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(fmt::format("DNS proxy address '{}': bad port", text));
    }
    a.port = static_cast<uint16_t>(port);
    return a;
  }
  auto sa = net::SocketAddress::Parse(text);
  if (!sa.ok()) {
    return absl::InvalidArgumentError(fmt::format(
        "DNS proxy address '{}': want localhost:PORT or IP:PORT ({})", text, sa.status().ToString()));
  }
  a.port = sa->port();
  a.ip = sa->ip();
  return a;
}

std::string ListenAddress::ToString() const {
  return ip ? net::SocketAddress(*ip, port).ToString() : fmt::format("localhost:{}", port);
}

StatusOr<net::Fd> OpenDnsSocket(const net::SocketAddress& addr, bool tcp, uint32_t mark) {
  if (tcp) {
    net::ListenerOptions lo;
    lo.address = addr;
    lo.backlog = 128;
    lo.reuse_port = true;
    lo.mark = mark;
    return net::CreateTcpListener(lo);
  }
  const int family = addr.ip().is_v4() ? AF_INET : AF_INET6;
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(fmt::format("udp socket: {}", std::strerror(errno)));
  net::Fd owned(fd);
  RETURN_IF_ERROR(net::SetReusePort(fd, true));
  if (mark != 0) RETURN_IF_ERROR(net::SetMark(fd, mark));
  if (family == AF_INET6) {
    int one = 1;
    (void)::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  sockaddr_storage ss{};
  socklen_t len = addr.ToSockaddr(&ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    return absl::Status(e == EADDRNOTAVAIL ? absl::StatusCode::kFailedPrecondition
                                           : absl::StatusCode::kUnavailable,
                        fmt::format("bind udp {}: {}", addr.ToString(), std::strerror(e)));
  }
  return owned;
}

struct DnsWorker::PodSet {
  PodSet(io::Loop& l, std::string u, DnsSockets s) : loop(l), uid(std::move(u)), sockets(std::move(s)) {}
  ~PodSet() {
    for (net::Fd* fd : {&sockets.udp4, &sockets.tcp4, &sockets.udp6, &sockets.tcp6}) {
      if (fd->valid()) loop.Spawn(CloseTask(loop, fd->Release()));
    }
  }
  static io::Task<void> CloseTask(io::Loop& loop, int fd) { (void)co_await loop.Close(fd); }

  io::Loop& loop;
  std::string uid;
  DnsSockets sockets;
  io::CancelScope scope;
  size_t inflight = 0;
};

DnsWorker::DnsWorker(io::Loop& loop, size_t shard, DnsWorkerOptions options, DnsMetrics& metrics,
                     Upstream& upstream)
    : loop_(loop),
      shard_(shard),
      options_(std::move(options)),
      metrics_(metrics),
      upstream_(upstream),
      rng_(static_cast<uint32_t>(std::random_device{}() + shard)) {}

DnsWorker::~DnsWorker() { Drain(); }

void DnsWorker::AddPod(const std::string& uid, DnsSockets sockets) {
  RemovePod(uid);
  auto set = std::make_shared<PodSet>(loop_, uid, std::move(sockets));
  pods_[uid] = set;
  for (const net::Fd* fd : {&set->sockets.udp4, &set->sockets.udp6}) {
    if (fd->valid()) loop_.Spawn(ServeUdp(this, set, fd->get()));
  }
  for (const net::Fd* fd : {&set->sockets.tcp4, &set->sockets.tcp6}) {
    if (fd->valid()) loop_.Spawn(AcceptTcp(this, set, fd->get()));
  }
}

void DnsWorker::RemovePod(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return;
  it->second->scope.Cancel();
  pods_.erase(it);
}

void DnsWorker::Drain() {
  for (auto& [uid, set] : pods_) set->scope.Cancel();
  pods_.clear();
}

io::Task<void> DnsWorker::ServeUdp(DnsWorker* w, std::shared_ptr<PodSet> set, int fd) {
  for (;;) {
    Status st = co_await w->loop_.WaitReadable(fd, {.scope = &set->scope});
    if (!st.ok() || set->scope.cancelled()) break;
    std::vector<uint8_t>& buf = ReceiveBuffer();
    for (int i = 0; i < kReadsPerWake; ++i) {
      sockaddr_storage peer{};
      socklen_t len = sizeof peer;
      ssize_t n = ::recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&peer), &len);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          AMBIT_LOG(kDebug, "dns", "pod {}: udp receive: {}", set->uid, std::strerror(errno));
        }
        break;
      }
      if (set->inflight >= kMaxInflightPerPod) {
        w->metrics_.Rejected(w->shard_, "overload");
        continue;
      }
      std::vector<uint8_t> query(buf.begin(), buf.begin() + n);
      w->loop_.Spawn(AnswerUdp(w, set, fd, std::move(query), peer, len));
    }
  }
}

io::Task<void> DnsWorker::AnswerUdp(DnsWorker* w, std::shared_ptr<PodSet> set, int fd,
                                    std::vector<uint8_t> query, sockaddr_storage peer, socklen_t len) {
  ++set->inflight;
  std::vector<uint8_t> reply = co_await Answer(w, set, std::move(query), false);
  --set->inflight;
  if (reply.empty() || set->scope.cancelled()) co_return;
  if (::sendto(fd, reply.data(), reply.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer), len) < 0) {
    AMBIT_LOG(kDebug, "dns", "pod {}: udp send: {}", set->uid, std::strerror(errno));
  }
}

io::Task<void> DnsWorker::AcceptTcp(DnsWorker* w, std::shared_ptr<PodSet> set, int fd) {
  io::Acceptor acceptor(w->loop_, fd);
  for (;;) {
    auto a = co_await acceptor.Next({.scope = &set->scope});
    if (set->scope.cancelled()) {
      if (a.ok()) (void)co_await w->loop_.Close(a->fd);
      break;
    }
    if (!a.ok()) {
      (void)co_await w->loop_.Sleep(std::chrono::milliseconds(50), {.scope = &set->scope});
      continue;
    }
    if (w->tcp_live_ >= w->options_.max_tcp_connections) {
      w->metrics_.Rejected(w->shard_, "overload");
      (void)co_await w->loop_.Close(a->fd);
      continue;
    }
    w->loop_.Spawn(ServeTcp(w, set, net::Fd(a->fd)));
  }
  co_await acceptor.Close();
}

io::Task<void> DnsWorker::ServeTcp(DnsWorker* w, std::shared_ptr<PodSet> set, net::Fd conn) {
  ++w->tcp_live_;
  const io::OpOptions opts{.scope = &set->scope, .timeout = w->options_.tcp_idle_timeout};
  for (;;) {
    std::array<std::byte, 2> prefix{};
    if (!(co_await io::RecvExact(w->loop_, conn.get(), prefix, opts)).ok()) break;
    size_t n = (static_cast<size_t>(prefix[0]) << 8) | static_cast<size_t>(prefix[1]);
    if (n == 0) break;
    std::vector<uint8_t> query(n);
    if (!(co_await io::RecvExact(w->loop_, conn.get(), std::as_writable_bytes(std::span(query)), opts)).ok()) {
      break;
    }
    std::vector<uint8_t> reply = co_await Answer(w, set, std::move(query), true);
    if (reply.empty() || set->scope.cancelled()) break;
    std::vector<uint8_t> framed(reply.size() + 2);
    framed[0] = static_cast<uint8_t>(reply.size() >> 8);
    framed[1] = static_cast<uint8_t>(reply.size() & 0xff);
    std::copy(reply.begin(), reply.end(), framed.begin() + 2);
    if (!(co_await io::SendAll(w->loop_, conn.get(), std::as_bytes(std::span(framed)), opts)).ok()) break;
  }
  (void)co_await w->loop_.Close(conn.Release());
  --w->tcp_live_;
}

io::Task<UpstreamResult> DnsWorker::Forward(DnsWorker* w, std::shared_ptr<PodSet> set, const DnsPod& pod,
                                            std::vector<uint8_t> query, bool tcp) {
  auto pending = std::make_shared<PendingAnswer>(w->loop_);
  io::Loop* loop = &w->loop_;
  w->upstream_.Forward(set->uid, pod.netns, tcp, std::move(query), [pending, loop](UpstreamResult r) {
    auto holder = std::make_shared<UpstreamResult>(std::move(r));
    loop->Post([pending, holder] {
      pending->result = std::move(*holder);
      pending->done.Set();
    });
  });
  Status st = co_await pending->done.Wait({.scope = &set->scope});
  if (!st.ok()) co_return UpstreamResult{UpstreamError::kCancelled, st, {}};
  co_return std::move(pending->result);
}

io::Task<std::vector<uint8_t>> DnsWorker::Answer(DnsWorker* w, std::shared_ptr<PodSet> set,
                                                 std::vector<uint8_t> raw, bool tcp) {
  ParsedQuery parsed = ParseQuery(raw);
  if (!parsed.ok()) {
    w->metrics_.Rejected(w->shard_, ParseErrorName(parsed.error));
    AMBIT_LOG(kDebug, "dns", "pod {}: {}", set->uid, parsed.status().ToString());
    co_return BuildError(parsed, raw,
                         parsed.error == ParseError::kBadOpcode ? Rcode::kNotImp : Rcode::kFormErr);
  }
  const Query& q = parsed.query;
  const size_t limit = tcp ? kMaxMessageSize : q.UdpLimit();
  std::shared_ptr<const DnsState> state = w->state_;  // alive across the co_await below
  const DnsPod* pod = nullptr;
  if (state) {
    auto it = state->pods.find(set->uid);
    if (it != state->pods.end()) pod = &it->second;
  }
  DnsLabels labels{QueryTypeLabel(q.qtype), tcp, pod ? std::string_view(pod->client.canonical_service) : "",
                   pod ? std::string_view(pod->client.canonical_revision) : ""};
  w->metrics_.Request(w->shard_, labels);
  ++w->answered_;
  if (pod == nullptr) co_return BuildError(parsed, raw, Rcode::kServFail);  // unknown source
  if (state->snapshot) {
    if (auto local = AnswerFromMesh(*state->snapshot, pod->client, q, w->options_.names, &w->rng_)) {
      AMBIT_LOG(kDebug, "dns", "pod {}: {} {} from the mesh ({}): {} record(s)", set->uid,
                QueryTypeLabel(q.qtype), q.name, local->service, local->records.size());
      co_return BuildAnswer(q, raw, local->records, {Rcode::kNoError, true, limit});
    }
  }
  w->metrics_.UpstreamRequest(w->shard_, labels);
  const base::MonoTime start = w->loop_.Now();
  UpstreamResult r = co_await Forward(w, set, *pod, raw, tcp);
  w->metrics_.UpstreamDuration(w->shard_, labels,
                               std::chrono::duration<double>(w->loop_.Now() - start).count());
  if (r.ok()) {
    if (auto relayed = RelayAnswer(r.answer, q.id, limit)) co_return std::move(*relayed);
    r.error = UpstreamError::kBadAnswer;
  }
  w->metrics_.UpstreamFailure(w->shard_, labels);
  AMBIT_LOG(kDebug, "dns", "pod {}: {} {}: upstream failed ({}): {}", set->uid, QueryTypeLabel(q.qtype),
            q.name, UpstreamErrorName(r.error), r.status.ToString());
  if (r.error == UpstreamError::kCancelled) co_return std::vector<uint8_t>{};
  co_return BuildError(parsed, raw, Rcode::kServFail);
}

}  // namespace ambit::dns
