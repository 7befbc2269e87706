#include "agent/dns/upstream.h"

#include <ares.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/base/log.h"
#include "common/net/socket.h"

namespace ambit::dns {

struct Upstream::Request {
  bool forget = false;
  std::string pod;
  std::shared_ptr<const net::NetnsHandle> netns;
  bool tcp = false;
  std::vector<uint8_t> query;
  Done done;
};

namespace {

// What the socket hooks of one pod's channels need.
struct SocketHooks {
  std::shared_ptr<const net::NetnsHandle> netns;
  const net::NetnsHandle* home = nullptr;  // the upstream thread's own netns
  uint32_t mark = 0;
  std::atomic<uint64_t>* opened = nullptr;
};

ares_socket_t HookSocket(int domain, int type, int protocol, void* ud) {
  auto* h = static_cast<SocketHooks*>(ud);
  auto make = [&]() -> StatusOr<net::Fd> {
    int fd = ::socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    if (fd < 0) return absl::UnavailableError(fmt::format("socket: {}", std::strerror(errno)));
    net::Fd owned(fd);
    if (h->mark != 0) RETURN_IF_ERROR(net::SetMark(fd, h->mark));
    return owned;
  };
  StatusOr<net::Fd> fd = (h->netns && h->home) ? net::CreateSocketOnThisThread(*h->home, *h->netns, make)
                                               : make();
  if (!fd.ok()) {
    AMBIT_LOG(kWarn, "dns", "upstream socket in {}: {}",
              h->netns ? h->netns->description() : std::string("the agent's netns"),
              fd.status().ToString());
    errno = ECONNREFUSED;
    return ARES_SOCKET_BAD;
  }
  h->opened->fetch_add(1, std::memory_order_relaxed);
  return fd->Release();
}
int HookClose(ares_socket_t s, void*) { return ::close(s); }
int HookConnect(ares_socket_t s, const sockaddr* a, ares_socklen_t n, void*) { return ::connect(s, a, n); }
ares_ssize_t HookRecvfrom(ares_socket_t s, void* b, size_t n, int f, sockaddr* a, ares_socklen_t* l, void*) {
  return ::recvfrom(s, b, n, f, a, l);
}
ares_ssize_t HookSendv(ares_socket_t s, const iovec* v, int n, void*) { return ::writev(s, v, n); }

constexpr ares_socket_functions kSocketFunctions = {HookSocket, HookClose, HookConnect, HookRecvfrom,
                                                    HookSendv};

UpstreamError FromAresStatus(int status) {
  switch (status) {
    case ARES_ETIMEOUT: return UpstreamError::kTimeout;
    case ARES_ECONNREFUSED: return UpstreamError::kRefused;
    case ARES_ESERVFAIL:
    case ARES_ENOTIMP:
    case ARES_EREFUSED: return UpstreamError::kServerFailed;
    case ARES_EBADRESP:
    case ARES_EFORMERR:
    case ARES_EBADQUERY: return UpstreamError::kBadAnswer;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED: return UpstreamError::kCancelled;
    default: return UpstreamError::kOther;
  }
}

struct Pending {
  Upstream::Done done;
};

void OnAnswer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(arg));
  UpstreamResult r;
  if (status == ARES_SUCCESS && abuf != nullptr && alen > 0) {
    r.answer.assign(abuf, abuf + alen);
  } else {
    r.error = status == ARES_SUCCESS ? UpstreamError::kBadAnswer : FromAresStatus(status);
    r.status = absl::UnavailableError(fmt::format("upstream DNS: {}", ares_strerror(status)));
  }
  p->done(std::move(r));
}

void Cancel(Upstream::Done& done) {
  done(UpstreamResult{UpstreamError::kCancelled, absl::CancelledError("DNS proxy stopping"), {}});
}

}  // namespace

struct Upstream::PodChannels {
  SocketHooks hooks;
  ares_channel udp = nullptr;
  ares_channel tcp = nullptr;
  ~PodChannels() {
    if (udp != nullptr) ares_destroy(udp);
    if (tcp != nullptr) ares_destroy(tcp);
  }
};

std::string_view UpstreamErrorName(UpstreamError e) {
  switch (e) {
    case UpstreamError::kNone: return "none";
    case UpstreamError::kTimeout: return "timeout";
    case UpstreamError::kRefused: return "refused";
    case UpstreamError::kServerFailed: return "server_failed";
    case UpstreamError::kBadAnswer: return "bad_answer";
    case UpstreamError::kCancelled: return "cancelled";
    case UpstreamError::kOther: return "other";
  }
  return "other";
}

StatusOr<UpstreamConfig> ParseResolvConf(std::string_view text, std::string source) {
  UpstreamConfig c;
  c.source = std::move(source);
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key) || key[0] == '#' || key[0] == ';') continue;
    if (key == "nameserver" && words >> value) {
      if (size_t pct = value.find('%'); pct != std::string::npos) value.resize(pct);
      auto ip = net::IpAddress::Parse(value);
      if (!ip.ok()) {
        AMBIT_LOG(kWarn, "dns", "{}: ignoring nameserver '{}': {}", c.source, value, ip.status().ToString());
        continue;
      }
      c.servers.emplace_back(*ip, 53);
    } else if (key == "options") {
      while (words >> value) {
        if (value.starts_with("timeout:")) {
          int s = std::atoi(value.c_str() + 8);
          if (s > 0) c.timeout = std::chrono::seconds(std::min(s, 30));
        } else if (value.starts_with("attempts:")) {
          int a = std::atoi(value.c_str() + 9);
          if (a > 0) c.attempts = std::min(a, 5);
        }
      }
    }
  }
  if (c.servers.empty()) {  // as the C library: no nameserver line means the local host
    AMBIT_LOG(kWarn, "dns", "{} names no usable nameserver: forwarding to 127.0.0.1:53 (in the "
              "pod), as the C library would (--dns-resolv-conf names another file)", c.source);
    c.servers.emplace_back(net::IpAddress::LoopbackV4(), 53);
  }
  return c;
}

StatusOr<UpstreamConfig> ReadResolvConf(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    AMBIT_LOG(kWarn, "dns", "cannot read {} ({})", path, std::strerror(errno));
    return ParseResolvConf("", path);
  }
  std::stringstream text;
  text << f.rdbuf();
  return ParseResolvConf(text.str(), path);
}

std::string DescribeServers(const UpstreamConfig& c) {
  std::string out;
  for (const auto& s : c.servers) out += (out.empty() ? "" : ", ") + s.ToString();
  return out;
}

Upstream::Upstream(UpstreamConfig config) : config_(std::move(config)) {}

StatusOr<std::unique_ptr<Upstream>> Upstream::Start(UpstreamConfig config) {
  static const int lib = ares_library_init(ARES_LIB_INIT_ALL);
  if (lib != ARES_SUCCESS) return absl::InternalError(fmt::format("c-ares: {}", ares_strerror(lib)));
  if (config.servers.empty()) return absl::InvalidArgumentError("no upstream nameserver");
  std::unique_ptr<Upstream> u(new Upstream(std::move(config)));
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) return absl::InternalError(fmt::format("eventfd: {}", std::strerror(errno)));
  u->wake_fd_ = net::Fd(efd);
  u->thread_ = std::thread([p = u.get()] { p->Run(); });
  return u;
}

Upstream::~Upstream() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
}

void Upstream::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
}

void Upstream::Forward(const std::string& pod, std::shared_ptr<const net::NetnsHandle> netns, bool tcp,
                       std::vector<uint8_t> query, Done done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!stopping_) {
      queue_.push_back(Request{false, pod, std::move(netns), tcp, std::move(query), std::move(done)});
      done = nullptr;
    }
  }
  if (done) {
    Cancel(done);
    return;
  }
  Wake();
}

void Upstream::ForgetPod(const std::string& pod) {
  {
    std::lock_guard<std::mutex> l(mu_);
    queue_.push_back(Request{true, pod, nullptr, false, {}, nullptr});
  }
  Wake();
}

Upstream::PodChannels* Upstream::ChannelsFor(const Request& r) {
  auto it = pods_.find(r.pod);
  if (it == pods_.end()) {
    auto pc = std::make_unique<PodChannels>();
    pc->hooks = {r.netns, home_ ? &*home_ : nullptr, config_.mark, &sockets_opened_};
    it = pods_.emplace(r.pod, std::move(pc)).first;
  }
  PodChannels& pc = *it->second;
  ares_channel& ch = r.tcp ? pc.tcp : pc.udp;
  if (ch != nullptr) return &pc;
  ares_options o{};
  o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | (r.tcp ? ARES_FLAG_USEVC : ARES_FLAG_IGNTC);
  o.timeout = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(config_.timeout).count());
  o.tries = config_.attempts;
  std::string conf = config_.source;
  o.resolvconf_path = conf.data();
  int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NOROTATE | ARES_OPT_RESOLVCONF;
  int st = ares_init_options(&ch, &o, mask);
  std::vector<ares_addr_port_node> nodes(config_.servers.size());
  for (size_t i = 0; st == ARES_SUCCESS && i < nodes.size(); ++i) {
    const net::SocketAddress& s = config_.servers[i];
    nodes[i].next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
    nodes[i].family = s.ip().is_v4() ? AF_INET : AF_INET6;
    if (s.ip().is_v4()) {
      nodes[i].addr.addr4 = s.ip().ToInAddr();
    } else {
      std::memcpy(&nodes[i].addr.addr6, s.ip().bytes().data(), 16);
    }
    nodes[i].udp_port = nodes[i].tcp_port = s.port();
  }
  if (st == ARES_SUCCESS) st = ares_set_servers_ports(ch, nodes.data());
  if (st != ARES_SUCCESS) {
    AMBIT_LOG(kError, "dns", "c-ares channel for pod {}: {}", r.pod, ares_strerror(st));
    if (ch != nullptr) ares_destroy(ch);
    ch = nullptr;
    return nullptr;
  }
  ares_set_socket_functions(ch, &kSocketFunctions, &pc.hooks);
  return &pc;
}

void Upstream::TakeRequests() {
  std::vector<Request> batch;
  {
    std::lock_guard<std::mutex> l(mu_);
    batch.swap(queue_);
  }
  for (Request& r : batch) {
    if (r.forget) {
      pods_.erase(r.pod);  // ares_destroy: its queries end with ARES_EDESTRUCTION
      continue;
    }
    PodChannels* pc = ChannelsFor(r);
    ares_channel ch = pc == nullptr ? nullptr : (r.tcp ? pc->tcp : pc->udp);
    if (ch == nullptr) {
      r.done(UpstreamResult{UpstreamError::kOther, absl::InternalError("no c-ares channel"), {}});
      continue;
    }
    ares_send(ch, r.query.data(), static_cast<int>(r.query.size()), OnAnswer,
              new Pending{std::move(r.done)});
  }
}

void Upstream::Run() {
  if (auto h = net::NetnsHandle::Current(); h.ok()) home_.emplace(std::move(*h));
  std::vector<pollfd> fds;
  std::vector<ares_channel> owners;
  for (;;) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) break;
    }
    TakeRequests();
    fds.assign(1, pollfd{wake_fd_.get(), POLLIN, 0});
    owners.assign(1, nullptr);
    int wait_ms = 1000;
    for (auto& [pod, pc] : pods_) {
      for (ares_channel ch : {pc->udp, pc->tcp}) {
        if (ch == nullptr) continue;
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
          short ev = 0;
          if (ARES_GETSOCK_READABLE(bits, i)) ev |= POLLIN;
          if (ARES_GETSOCK_WRITABLE(bits, i)) ev |= POLLOUT;
          if (ev == 0) continue;
          fds.push_back(pollfd{socks[i], ev, 0});
          owners.push_back(ch);
        }
        timeval max{1, 0}, tv{};
        timeval* t = ares_timeout(ch, &max, &tv);
        wait_ms = std::min<int>(wait_ms, static_cast<int>(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000));
      }
    }
    int n = ::poll(fds.data(), fds.size(), wait_ms);
    if (n < 0 && errno != EINTR) {
      AMBIT_LOG(kError, "dns", "upstream poll: {}", std::strerror(errno));
    }
    if (fds[0].revents != 0) {
      uint64_t v = 0;
      (void)!::read(wake_fd_.get(), &v, sizeof v);
    }
    for (size_t i = 1; n > 0 && i < fds.size(); ++i) {
      short re = fds[i].revents;
      if (re == 0) continue;
      ares_socket_t r = (re & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
      ares_socket_t w = (re & (POLLOUT | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD;
      ares_process_fd(owners[i], r, w);
    }
    for (auto& [pod, pc] : pods_) {  // timeouts and retries
      if (pc->udp != nullptr) ares_process_fd(pc->udp, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      if (pc->tcp != nullptr) ares_process_fd(pc->tcp, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
  }
  pods_.clear();
  std::vector<Request> rest;
  {
    std::lock_guard<std::mutex> l(mu_);
    rest.swap(queue_);
  }
  for (Request& r : rest) {
    if (r.done) Cancel(r.done);
  }
}

}  // namespace ambit::dns
