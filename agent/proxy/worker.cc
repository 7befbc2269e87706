#include "agent/proxy/worker.h"

#include <fmt/format.h>

#include "common/base/log.h"
#include "common/io/acceptor.h"

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
};

Worker::Worker(io::Loop& loop, size_t index, WorkerOptions options, TcpMetrics& metrics,
               metrics::Registry& registry, net::NetnsRunner& runner)
    : loop_(loop),
      index_(index),
      options_(options),
      metrics_(metrics),
      runner_(runner),
      pool_(loop, options.pool),
      rng_(std::random_device{}() + index) {
  (void)registry;
}

void Worker::Start() { pool_.Start(); }

Worker::~Worker() = default;

void Worker::SetState(std::shared_ptr<const AgentState> state, bool policies_changed) {
  state_ = std::move(state);
  if (policies_changed && state_) {
    size_t closed = tracker_.Reauthorize(*state_);
    if (closed > 0) {
      AMBIT_LOG(kInfo, "authz", "worker {}: policy change closed {} inbound connection(s)", index_,
                closed);
    }
  }
}

void Worker::AddPod(const std::string& uid, std::array<net::Fd, 3> listeners) {
  RemovePod(uid);
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
  for (auto& [uid, set] : listeners_) set->scope.Cancel();
  listeners_.clear();
  pool_.Shutdown();
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
  io::Acceptor acceptor(w->loop_, set->fds[static_cast<size_t>(kind)].get());
  for (;;) {
    auto a = co_await acceptor.Next({.scope = &set->scope});
    if (set->scope.cancelled()) {
      if (a.ok()) (void)co_await w->loop_.Close(a->fd);
      break;
    }
    if (!a.ok()) {
      // Out of fds (EMFILE/ENFILE) or a transient error: count it, back off
      // briefly so we don't spin, keep serving.
      AMBIT_LOG(kWarn, "capture", "accept on pod {} failed: {}", set->uid, a.status().ToString());
      (void)co_await w->loop_.Sleep(std::chrono::milliseconds(50), {.scope = &set->scope});
      continue;
    }
    ++w->accepted_;
    auto peer = net::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&a->peer),
                                                 a->peer_len);
    w->Dispatch(kind, set->uid, net::Fd(a->fd), peer.ok() ? *peer : net::SocketAddress());
  }
  co_await acceptor.Close();
}

void Worker::Dispatch(ListenerKind kind, const std::string& uid, net::Fd fd,
                      const net::SocketAddress& peer) {
  std::shared_ptr<const PodContext> pod;
  if (state_) {
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
      loop_.Spawn(HandleOutbound(*this, std::move(pod), std::move(fd), peer));
      break;
    case ListenerKind::kInboundPlain:
      loop_.Spawn(HandlePlainInbound(*this, std::move(pod), std::move(fd), peer));
      break;
    case ListenerKind::kHbone:
      loop_.Spawn(HandleHboneInbound(*this, std::move(pod), std::move(fd), peer));
      break;
  }
}

}  // namespace ambit::agent
