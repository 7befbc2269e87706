#include "agent/proxy/worker.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include "agent/proxy/pod_netns.h"
#include "common/base/log.h"
#include "common/io/acceptor.h"
#include "common/io/buffer_pool.h"
#include "common/net/socket.h"

namespace ambit::agent {

// The sockets of one pod on this worker, shared by its three accept loops.
struct Worker::ListenerSet {
  ListenerSet(io::Loop& l, std::string u, std::array<net::Fd, 3> f)
      : loop(l), uid(std::move(u)), fds(std::move(f)) {}
  ~ListenerSet() {
    for (auto& fd : fds) {
      if (fd.valid()) loop.Spawn(CloseTask(loop, fd.Release()));
    }
  }
  static io::Task<void> CloseTask(io::Loop& loop, int fd) { (void)co_await loop.Close(fd); }

  io::Loop& loop;
  std::string uid;
  std::array<net::Fd, 3> fds;
  io::CancelScope scope;
  bool draining = false;  // listeners shut down: accept what is queued, then stop
};

Worker::Worker(io::Loop& loop, size_t index, WorkerOptions options, TcpMetrics& metrics,
               metrics::Registry& registry, net::NetnsRunner& runner)
    : loop_(loop),
      index_(index),
      options_(options),
      metrics_(metrics),
      runner_(runner),
      pool_(loop, options.pool),
      peers_(metrics, index),
      rng_(std::random_device{}() + index),
      accept_errors_(registry, index) {}

void Worker::Start() {
  if (auto home = net::NetnsHandle::Current(); home.ok()) {
    home_netns_.emplace(std::move(*home));
  } else {
    AMBIT_LOG(kWarn, "proxy", "worker {}: own netns unknown ({}); upstream sockets go through "
              "the netns helper thread", index_, home.status().ToString());
  }
  pool_.Start();
  if (index_ == 0) loop_.Spawn(NetnsWatch(this, watch_scope_));
  // Relay and stream buffers this worker did not need for a while go back.
  loop_.Spawn(io::TrimPoolEvery(loop_, std::chrono::seconds(5), watch_scope_));
}

Worker::~Worker() { watch_scope_->Cancel(); }

void Worker::SetState(std::shared_ptr<const AgentState> state, bool policies_changed) {
  state_ = std::move(state);
  peers_.Clear();  // its keys point into the previous state
  if (policies_changed && state_) {
    size_t closed = tracker_.Reauthorize(*state_);
    if (closed > 0) {
      AMBIT_LOG(kInfo, "authz", "worker {}: policy change closed {} inbound connection(s)", index_,
                closed);
    }
  }
}

namespace {

// Accepted sockets inherit TCP_NODELAY and the keepalive settings of their
// listener (ISTIO-COMPAT §3.1), so they are set once here instead of five
// setsockopt calls per accepted connection.
void ConfigureListener(int fd, const net::KeepaliveOptions& keepalive) {
  if (fd < 0) return;
  Status st = net::SetTcpNoDelay(fd, true);
  if (st.ok()) st = net::SetKeepalive(fd, keepalive);
  if (!st.ok()) {
    AMBIT_LOG(kWarn, "proxy", "listener fd {}: {}; accepted connections go without TCP_NODELAY "
              "or keepalive", fd, st.ToString());
  }
}

}  // namespace

void Worker::AddPod(const std::string& uid, std::array<net::Fd, 3> listeners) {
  RemovePod(uid);
  for (const net::Fd& fd : listeners) ConfigureListener(fd.get(), options_.keepalive);
  auto set = std::make_shared<ListenerSet>(loop_, uid, std::move(listeners));
  listeners_[uid] = set;
  for (ListenerKind k : {ListenerKind::kOutbound, ListenerKind::kInboundPlain, ListenerKind::kHbone}) {
    if (set->fds[static_cast<size_t>(k)].valid()) loop_.Spawn(AcceptLoop(this, set, k));
  }
}

void Worker::RemovePod(const std::string& uid) {
  auto it = listeners_.find(uid);
  if (it == listeners_.end()) return;
  it->second->scope.Cancel();
  listeners_.erase(it);
  size_t n = tracker_.CancelPod(uid);
  if (n > 0) AMBIT_LOG(kInfo, "capture", "pod {} removed: closed {} connection(s)", uid, n);
}

void Worker::TrackInbound(const std::shared_ptr<hbone::HboneConn>& conn) {
  if (draining_) {
    conn->Drain();
    return;
  }
  // Drop expired entries now and then so the list stays proportional to live connections.
  if (inbound_.size() >= 64 && inbound_.size() % 64 == 0) {
    std::erase_if(inbound_, [](const auto& w) { return w.expired(); });
  }
  inbound_.push_back(conn);
}

void Worker::Drain() {
  draining_ = true;
  for (auto& [uid, set] : listeners_) {
    set->draining = true;
    // shutdown(2) takes the socket out of the SO_REUSEPORT group at once and
    // hands its queue to the group's other listeners (tcp_migrate_req); our
    // pending accept then fails and the accept loop ends after taking what
    // it had already accepted.
    for (auto& fd : set->fds) {
      if (fd.valid()) (void)::shutdown(fd.get(), SHUT_RDWR);
    }
  }
  listeners_.clear();
  if (busy_.load(std::memory_order_relaxed) == 0) pool_.Shutdown();
  // GOAWAY on every inbound HBONE connection: open streams finish, new
  // ones go elsewhere (the peer's pool dials a fresh connection).
  size_t n = 0;
  for (auto& weak : inbound_) {
    if (auto conn = weak.lock()) {
      conn->Drain();
      ++n;
    }
  }
  inbound_.clear();
  AMBIT_LOG(kInfo, "agent", "worker {} draining: listeners closed, GOAWAY sent on {} HBONE connection(s)",
            index_, n);
}

io::Task<void> Worker::AcceptLoop(Worker* w, std::shared_ptr<ListenerSet> set, ListenerKind kind) {
  w->busy_.fetch_add(1, std::memory_order_relaxed);
  const int listen_fd = set->fds[static_cast<size_t>(kind)].get();
  io::Acceptor acceptor(w->loop_, listen_fd);
  for (;;) {
    auto a = co_await acceptor.Next({.scope = &set->scope});
    if (set->scope.cancelled()) {  // pod removed: immediate teardown
      if (a.ok()) (void)co_await w->loop_.Close(a->fd);
      break;
    }
    if (!a.ok()) {
      if (set->draining) break;  // the shut-down listener has nothing more
      // Out of fds: shed one queued connection (or back off briefly when
      // nothing could be shed) so we neither spin nor leave clients hanging.
      if (w->accept_errors_.OnError(listen_fd, set->uid, a.status(), w->loop_.Now())) {
        (void)co_await w->loop_.Sleep(std::chrono::milliseconds(50), {.scope = &set->scope});
      }
      continue;
    }
    ++w->accepted_;
    auto peer = net::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&a->peer),
                                                 a->peer_len);
    w->Dispatch(kind, set->uid, net::Fd(a->fd), peer.ok() ? *peer : net::SocketAddress());
  }
  co_await acceptor.Close();
  w->Idle();
}

io::Task<void> Worker::Counted(Worker* w, io::Task<void> handler) {
  w->busy_.fetch_add(1, std::memory_order_relaxed);
  co_await std::move(handler);
  w->Idle();
}

void Worker::Idle() {
  if (busy_.fetch_sub(1, std::memory_order_relaxed) == 1 && draining_) pool_.Shutdown();
}

void Worker::Dispatch(ListenerKind kind, const std::string& uid, net::Fd fd,
                      const net::SocketAddress& peer) {
  std::shared_ptr<const PodContext> pod;
  if (state_ && state_->snapshot) {  // no workload config yet: refuse
    auto it = state_->pods.find(uid);
    if (it != state_->pods.end()) pod = it->second;
  }
  if (!pod) {
    // Listener still open for a pod that just left: refuse.
    loop_.Spawn(ListenerSet::CloseTask(loop_, fd.Release()));
    return;
  }
  switch (kind) {
    case ListenerKind::kOutbound:
      loop_.Spawn(Counted(this, HandleOutbound(*this, std::move(pod), std::move(fd), peer)));
      break;
    case ListenerKind::kInboundPlain:
      loop_.Spawn(Counted(this, HandlePlainInbound(*this, std::move(pod), std::move(fd), peer)));
      break;
    case ListenerKind::kHbone:
      loop_.Spawn(Counted(this, HandleHboneInbound(*this, std::move(pod), std::move(fd), peer)));
      break;
  }
}

// Worker 0 only: a pod whose netns path was deleted (or now names another
// namespace) keeps its listeners and connections — the namespace lives on
// while we hold it — until the config drops the pod; say so once.
io::Task<void> Worker::NetnsWatch(Worker* w, std::shared_ptr<io::CancelScope> scope) {
  for (;;) {
    Status st = co_await w->loop_.Sleep(std::chrono::seconds(2), {.scope = scope.get()});
    if (!st.ok() || scope->cancelled()) co_return;  // `w` may be gone
    w->CheckNetns();
  }
}

void Worker::CheckNetns() {
  if (!state_) return;
  std::erase_if(netns_warned_, [this](const std::string& uid) { return !state_->pods.contains(uid); });
  for (const auto& [uid, pod] : state_->pods) {
    if (!pod->netns || netns_warned_.contains(uid)) continue;
    std::string problem = NetnsPathProblem(pod->workload.netns, *pod->netns);
    if (problem.empty()) continue;
    netns_warned_.insert(uid);
    AMBIT_LOG(kWarn, "capture",
              "pod {}: its network namespace path is gone ({}); the agent keeps the namespace "
              "open and its listeners until the pod leaves the config",
              uid, problem);
  }
}

}  // namespace ambit::agent
