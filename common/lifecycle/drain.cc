#include "common/lifecycle/drain.h"

#include <algorithm>

namespace ambit::lifecycle {

struct DrainTrigger::State {
  explicit State(io::Loop& l) : loop(l), event(l) {}
  io::Loop& loop;
  io::Event event;
  bool alive = true;  // false once the watcher is gone (loop thread only)
  std::vector<absl::AnyInvocable<void()>> callbacks;
};

namespace {
void Notify(const std::shared_ptr<DrainTrigger::State>& state);
}  // namespace

bool DrainTrigger::Trigger() {
  std::vector<std::shared_ptr<State>> watchers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (triggered_.exchange(true, std::memory_order_acq_rel)) return false;
    watchers = watchers_;
  }
  for (auto& w : watchers) Notify(w);
  return true;
}

std::unique_ptr<DrainWatcher> DrainTrigger::Watch(io::Loop& loop) {
  auto state = std::make_shared<State>(loop);
  bool already = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    watchers_.push_back(state);
    already = triggered_.load(std::memory_order_acquire);
  }
  if (already) Notify(state);
  return std::unique_ptr<DrainWatcher>(new DrainWatcher(*this, state));
}

void DrainTrigger::Forget(State* state) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.erase(std::remove_if(watchers_.begin(), watchers_.end(),
                                 [&](const auto& w) { return w.get() == state; }),
                  watchers_.end());
}

namespace {
void Notify(const std::shared_ptr<DrainTrigger::State>& state) {
  state->loop.Post([state] {
    if (!state->alive || state->event.is_set()) return;
    state->event.Set();
    auto callbacks = std::move(state->callbacks);
    for (auto& cb : callbacks) cb();
  });
}
}  // namespace

DrainWatcher::~DrainWatcher() {
  state_->alive = false;
  state_->callbacks.clear();
  trigger_.Forget(state_.get());
}

bool DrainWatcher::draining() const { return state_->event.is_set(); }

io::Event::WaitOp DrainWatcher::Wait(io::OpOptions o) { return state_->event.Wait(o); }

void DrainWatcher::OnDrain(absl::AnyInvocable<void()> cb) {
  if (state_->event.is_set()) {
    cb();
    return;
  }
  state_->callbacks.push_back(std::move(cb));
}

}  // namespace ambit::lifecycle
