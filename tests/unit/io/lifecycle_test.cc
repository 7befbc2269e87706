#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "common/lifecycle/drain.h"
#include "common/lifecycle/runtime.h"

namespace ambit::lifecycle {
namespace {

using namespace std::chrono_literals;

TEST_CASE("runtime: workers run posted work on their own threads and stop cleanly") {
  auto rt = Runtime::Create({.workers = 3, .handle_signals = false});
  REQUIRE_MESSAGE(rt.ok(), rt.status().ToString());
  Runtime& r = **rt;
  CHECK(r.worker_count() == 3);
  const auto main_id = std::this_thread::get_id();
  std::set<std::thread::id> seen;
  int replies = 0;
  for (size_t i = 0; i < r.worker_count(); ++i) {
    r.PostToWorker(i, [&r, &seen, &replies](io::Loop& loop) {
      auto id = std::this_thread::get_id();
      std::string name = loop.name();
      r.PostToMain([&seen, &replies, id, name] {
        seen.insert(id);
        CHECK(name.rfind("worker-", 0) == 0);
        ++replies;
      });
    });
  }
  REQUIRE(r.main_loop().RunUntil([&] { return replies == 3; }, 5s));
  CHECK(seen.size() == 3);
  CHECK(seen.count(main_id) == 0);
  r.Shutdown();
  r.PostToWorker(0, [](io::Loop&) { FAIL("ran after shutdown"); });  // dropped
}

TEST_CASE("runtime: io_uring failure makes every loop use epoll") {
  auto rt = Runtime::Create(
      {.workers = 2, .handle_signals = false, .fail_uring_setup_for_test = true});
  REQUIRE(rt.ok());
  CHECK((*rt)->main_loop().backend_kind() == io::BackendKind::kEpoll);
  CHECK((*rt)->worker_backend(0) == io::BackendKind::kEpoll);
  CHECK((*rt)->worker_backend(1) == io::BackendKind::kEpoll);
}

TEST_CASE("drain: trigger once, watchers on worker loops are notified and can await") {
  auto rt = Runtime::Create({.workers = 2, .handle_signals = false});
  REQUIRE(rt.ok());
  Runtime& r = **rt;
  DrainTrigger& drain = r.drain();
  std::atomic<int> awaited{0};
  std::atomic<int> called{0};
  std::atomic<int> watching{0};
  for (size_t i = 0; i < 2; ++i) {
    r.PostToWorker(i, [&](io::Loop& loop) {
      loop.Spawn([](io::Loop& l, DrainTrigger& d, std::atomic<int>& aw, std::atomic<int>& ca,
                    std::atomic<int>& wa) -> io::Task<void> {
        auto watcher = d.Watch(l);
        watcher->OnDrain([&ca] { ++ca; });
        ++wa;
        Status s = co_await watcher->Wait({.timeout = 10s});
        if (s.ok() && watcher->draining()) ++aw;
      }(loop, drain, awaited, called, watching));
    });
  }
  REQUIRE(r.main_loop().RunUntil([&] { return watching == 2; }, 5s));
  CHECK_FALSE(drain.triggered());
  CHECK(drain.Trigger());
  CHECK_FALSE(drain.Trigger());  // only once
  REQUIRE(r.main_loop().RunUntil([&] { return awaited == 2 && called == 2; }, 5s));
  // A watcher created after the trigger sees it at once.
  auto late = drain.Watch(r.main_loop());
  r.main_loop().RunUntil([&] { return late->draining(); }, 5s);
  CHECK(late->draining());
}

TEST_CASE("signals: SIGTERM drains, a second SIGINT stops at once") {
  auto rt = Runtime::Create({.workers = 1});
  REQUIRE(rt.ok());
  Runtime& r = **rt;
  int drains = 0;
  int immediates = 0;
  r.SetDrainHandler([&] { ++drains; });
  r.SetImmediateHandler([&] {
    ++immediates;
    r.Stop();
  });
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);
  REQUIRE(r.main_loop().RunUntil([&] { return drains == 1; }, 5s));
  CHECK(r.drain().triggered());
  CHECK(immediates == 0);
  REQUIRE(::kill(::getpid(), SIGTERM) == 0);  // repeated SIGTERM: still draining
  REQUIRE(::kill(::getpid(), SIGINT) == 0);
  r.Run();  // returns once the immediate handler called Stop()
  CHECK(drains == 1);
  CHECK(immediates == 1);
}

}  // namespace
}  // namespace ambit::lifecycle
