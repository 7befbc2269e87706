#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/io/task.h"
#include "io_test_util.h"

namespace ambit::io {
namespace {

Task<int> Value(int v) { co_return v; }
Task<int> Sum(int a, int b) { co_return co_await Value(a) + co_await Value(b); }
Task<void> Append(std::vector<std::string>* log, std::string what) {
  log->push_back(std::move(what));
  co_return;
}

int g_alive = 0;
struct Tracker {
  Tracker() { ++g_alive; }
  ~Tracker() { --g_alive; }
};
Task<void> Tracked(Loop& loop) {
  Tracker t;
  co_await loop.Sleep(std::chrono::milliseconds(1));
}

Task<int> Deep(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await Deep(n - 1);
}

Task<Status> SleepThen(Loop& loop, std::chrono::milliseconds d, std::vector<int>* order, int id) {
  Status s = co_await loop.Sleep(d);
  order->push_back(id);
  co_return s;
}

TEST_CASE("task: lazy start, values and nesting") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  std::vector<std::string> log;
  Task<void> t = Append(&log, "ran");
  CHECK(log.empty());  // lazy: nothing ran yet
  loop->BlockOn(std::move(t));
  CHECK(log == std::vector<std::string>{"ran"});
  CHECK(loop->BlockOn(Sum(20, 22)) == 42);
  // Symmetric transfer is a tail call only in optimised builds without ASan or
  // TSan (GCC).
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  constexpr int kDepth = 100000;
#else
  constexpr int kDepth = 1000;
#endif
  CHECK(loop->BlockOn(Deep(kDepth)) == kDepth);
}

TEST_CASE("task: spawned frames are freed when they finish") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  for (int i = 0; i < 100; ++i) loop->Spawn(Tracked(*loop));
  CHECK(loop->live_tasks() == 100);
  CHECK(loop->RunUntil([&] { return loop->live_tasks() == 0; }, std::chrono::seconds(5)));
  CHECK(g_alive == 0);
}

TEST_CASE("task: unfinished spawned tasks are destroyed with the loop") {
  FOR_EACH_BACKEND(kind);
  {
    auto loop = testing::MakeLoop(kind);
    loop->Spawn([](Loop& l) -> Task<void> {
      Tracker t;
      co_await l.Sleep(std::chrono::hours(1));
    }(*loop));
    loop->RunOnce(std::chrono::milliseconds(0));
    CHECK(g_alive == 1);
    CHECK(loop->ops_in_flight() == 1);
  }
  CHECK(g_alive == 0);
}

TEST_CASE("task: WhenAll runs both and returns both results") {
  FOR_EACH_BACKEND(kind);
  auto loop = testing::MakeLoop(kind);
  std::vector<int> order;
  auto [a, b] = loop->BlockOn(WhenAll(SleepThen(*loop, std::chrono::milliseconds(30), &order, 1),
                                      SleepThen(*loop, std::chrono::milliseconds(5), &order, 2)));
  CHECK(a.ok());
  CHECK(b.ok());
  CHECK(order == std::vector<int>{2, 1});  // concurrent: the shorter one finished first
  auto [x, y] = loop->BlockOn(WhenAll(Value(1), Value(2)));  // both finish synchronously
  CHECK(x == 1);
  CHECK(y == 2);
  std::vector<std::string> log;
  auto [v, n] = loop->BlockOn(WhenAll(Append(&log, "void"), Value(3)));
  CHECK(v == std::monostate{});
  CHECK(n == 3);
  CHECK(log == std::vector<std::string>{"void"});
}

}  // namespace
}  // namespace ambit::io
