#include "waypoint/proxy/worker.h"

#include <random>

#include <sys/socket.h>

#include "common/base/log.h"
#include "common/io/acceptor.h"
#include "common/io/buffer_pool.h"

namespace ambit::waypoint {

Worker::Worker(io::Loop& loop, size_t index, WorkerOptions options,
               const RequestMetrics& requests, telemetry::TcpMetrics& tcp,
               WorkerCounters counters)
    : loop_(loop),
      index_(index),
      options_(std::move(options)),
      requests_(requests),
      tcp_(tcp),
      counters_(counters),
      pool_(loop, options_.pool),
      http1_pool_(loop, options_.upstream),
      h2_pool_(loop, options_.upstream),
      rng_(std::random_device{}() | (uint64_t{std::random_device{}()} << 32) | 1) {
  http1_pool_.SetOnIdleClose([this](const std::string& c) { CountIdleTimeout(c, false); });
  h2_pool_.SetOnIdleClose([this](const std::string& c) { CountIdleTimeout(c, false); });
}

void Worker::CountIdleTimeout(const std::string& cluster, bool tcp) {
  metrics::CounterFamily* f = tcp ? counters_.tcp_idle_timeouts : counters_.upstream_idle_timeouts;
  if (f != nullptr) f->Get(index_, {cluster})->Inc();
}

Worker::~Worker() { accept_scope_->Cancel(); }

void Worker::Start() {
  pool_.Start();
  loop_.Spawn(Sweeper(this, accept_scope_));
  // Stream buffers this worker did not need for a while go back.
  loop_.Spawn(io::TrimPoolEvery(loop_, std::chrono::seconds(5), accept_scope_));
}

void Worker::SetState(std::shared_ptr<const WaypointState> state) {
  state_ = std::move(state);
  if (state_) picker_.Forget(state_->snapshot);
  // Endpoints that left: their pooled upstreams go now (a reused pod IP must
  // never get a request over a connection meant for its predecessor).
  // Live = still an endpoint of some service; a pod that left every service
  // (or the mesh) loses its pooled connections now.
  std::set<std::string> live;
  if (state_ && state_->snapshot) {
    for (const auto& [key, svc] : state_->snapshot->services()) {
      for (const auto& [uid, ep] : svc.endpoints) {
        const mesh::Workload* w = state_->snapshot->FindWorkload(uid);
        if (w == nullptr) continue;
        for (const auto& ip : w->addresses) live.insert(EndpointLiveKey(*w, ip));
      }
    }
  }
  const size_t before = http1_pool_.idle() + h2_pool_.sessions();
  http1_pool_.Prune(live);
  h2_pool_.Prune(live);
  const size_t after = http1_pool_.idle() + h2_pool_.sessions();
  if (after < before) {
    AMBIT_LOG(kInfo, "waypoint", "worker {}: closed {} pooled upstream connection(s) to departed "
              "endpoints", index_, before - after);
  }
}

void Worker::AddListener(ListenerKind kind, net::Fd fd) {
  const int raw = fd.get();
  listeners_.push_back(std::move(fd));
  loop_.Spawn(AcceptLoop(this, raw, kind, accept_scope_));
}

void Worker::Drain() {
  if (draining_) return;
  draining_ = true;
  for (auto& fd : listeners_) (void)::shutdown(fd.get(), SHUT_RDWR);
  size_t n = 0;
  for (auto& weak : downstream_) {
    if (auto s = weak.lock()) {
      s->Drain();
      ++n;
    }
  }
  downstream_.clear();
  h2_pool_.Shutdown();
  http1_pool_.Prune({});
  AMBIT_LOG(kInfo, "waypoint", "worker {} draining: listeners closed, GOAWAY on {} connection(s)",
            index_, n);
}

void Worker::TrackDownstream(const std::shared_ptr<http2::Session>& s) {
  std::erase_if(downstream_, [](const auto& w) { return w.expired(); });
  downstream_.push_back(s);
  if (draining_) s->Drain();
}

void Worker::CountDownstreamError(std::string_view protocol, std::string_view reason) {
  if (counters_.downstream_errors == nullptr) return;
  counters_.downstream_errors->Get(index_, {std::string(protocol), std::string(reason)})->Inc();
}

void Worker::CountConnectRejected(std::string_view reason) {
  if (counters_.connect_rejected == nullptr) return;
  counters_.connect_rejected->Get(index_, {std::string(reason)})->Inc();
}

void Worker::CountRetry(const std::string& cluster, std::string_view event) {
  if (counters_.retries == nullptr) return;
  counters_.retries->Get(index_, {cluster, std::string(event)})->Inc();
}

void Worker::CountRoute(std::string_view outcome) {
  if (counters_.route_outcomes == nullptr) return;
  counters_.route_outcomes->Get(index_, {std::string(outcome)})->Inc();
}

io::Task<void> Worker::AcceptLoop(Worker* w, int fd, ListenerKind kind,
                                  std::shared_ptr<io::CancelScope> scope) {
  w->busy_.fetch_add(1, std::memory_order_relaxed);
  io::Acceptor acceptor(w->loop_, fd);
  for (;;) {
    auto a = co_await acceptor.Next({.scope = scope.get()});
    if (scope->cancelled()) {
      if (a.ok()) (void)co_await w->loop_.Close(a->fd);
      break;
    }
    if (!a.ok()) {
      if (w->draining_) break;
      AMBIT_LOG(kWarn, "waypoint", "accept failed: {}", a.status().ToString());
      (void)co_await w->loop_.Sleep(std::chrono::milliseconds(50), {.scope = scope.get()});
      continue;
    }
    auto peer = net::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&a->peer),
                                                 a->peer_len);
    net::Fd conn(a->fd);
    const net::SocketAddress p = peer.ok() ? *peer : net::SocketAddress();
    if (!w->state_) {  // no certificate/config yet: refuse
      (void)co_await w->loop_.Close(conn.Release());
      continue;
    }
    Worker* target = w->LeastBusy();
    target->connections_.fetch_add(1, std::memory_order_relaxed);
    if (target == w) {
      w->SpawnCounted(Serve(w, kind, std::move(conn), p));
    } else {
      if (w->counters_.cx_rebalanced != nullptr) w->counters_.cx_rebalanced->Get(w->index_, {})->Inc();
      const int raw = conn.Release();
      target->loop_.Post([target, kind, raw, p] {
        target->SpawnCounted(Serve(target, kind, net::Fd(raw), p));
      });
    }
  }
  co_await acceptor.Close();
  w->busy_.fetch_sub(1, std::memory_order_relaxed);
}

Worker* Worker::LeastBusy() {
  Worker* best = this;
  int64_t least = connections();
  for (Worker* o : siblings_) {
    if (o == this) continue;
    const int64_t n = o->connections();
    if (n < least) {
      least = n;
      best = o;
    }
  }
  return best;
}

void Worker::ReportActive() {
  if (counters_.cx_active == nullptr) return;
  counters_.cx_active->Get(index_, {std::to_string(index_)})
      ->Set(static_cast<double>(connections()));
}

io::Task<void> Worker::Serve(Worker* w, ListenerKind kind, net::Fd fd, net::SocketAddress peer) {
  w->ReportActive();
  if (!w->state_) {  // handed over before this worker got its first state
    (void)co_await w->loop_.Close(fd.Release());
  } else if (kind == ListenerKind::kHbone) {
    co_await HandleHboneConnection(*w, std::move(fd), peer);
  } else {
    co_await HandleSandwichConnection(*w, std::move(fd), peer);
  }
  w->connections_.fetch_sub(1, std::memory_order_relaxed);
  w->ReportActive();
}

io::Task<void> Worker::Counted(Worker* w, io::Task<void> task) {
  w->busy_.fetch_add(1, std::memory_order_relaxed);
  co_await std::move(task);
  if (w->busy_.fetch_sub(1, std::memory_order_relaxed) == 1 && w->draining_) w->pool_.Shutdown();
}

io::Task<void> Worker::Sweeper(Worker* w, std::shared_ptr<io::CancelScope> scope) {
  for (;;) {
    // Every second, so a short DestinationRule idleTimeout closes close to
    // on time (a pooled upstream past it is never reused either way).
    Status st = co_await w->loop_.Sleep(std::chrono::seconds(1), {.scope = scope.get()});
    if (!st.ok() || scope->cancelled()) co_return;
    w->http1_pool_.SweepIdle();
    w->h2_pool_.SweepIdle();
  }
}

}  // namespace ambit::waypoint
