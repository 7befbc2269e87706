// TrimPoolEvery: a worker's housekeeping task gives back pooled blocks its loop
// did not need for a whole period, keeps the ones in use, and ends with its scope.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <vector>

#include "common/io/buffer_pool.h"
#include "common/io/test_loop.h"

namespace ambit::io {
namespace {

using namespace std::chrono_literals;

TEST_CASE("TrimPoolEvery: idle blocks go back after a full period, then the task ends") {
  buffer::BlockPool::Clear();
  TestLoop t(BackendKind::kEpoll);
  auto scope = std::make_shared<CancelScope>();
  t.loop().Spawn(TrimPoolEvery(t.loop(), 5s, scope));
  t.RunUntilIdle();
  {
    std::vector<PooledBuffer> burst;
    for (int i = 0; i < 6; ++i) burst.push_back(PooledBuffer::Get(buffer::kChunkBlock));
  }
  REQUIRE(buffer::BlockPool::ThisThread().cached_blocks == 6);
  t.Advance(5s);  // first tick: the interval saw all 6 taken, nothing was idle throughout
  t.RunUntilIdle();
  CHECK(buffer::BlockPool::ThisThread().cached_blocks == 6);
  PooledBuffer in_use = PooledBuffer::Get(buffer::kChunkBlock);  // 1 out during this period
  in_use.Release();
  t.Advance(5s);  // 5 of 6 sat unused for the whole period
  t.RunUntilIdle();
  CHECK(buffer::BlockPool::ThisThread().cached_blocks == 1);
  t.Advance(5s);
  t.RunUntilIdle();
  CHECK(buffer::BlockPool::ThisThread().cached_blocks == 0);
  const uint64_t trimmed = buffer::BlockPool::ThisThread().trimmed;
  scope->Cancel();
  t.RunUntilIdle();
  { PooledBuffer b = PooledBuffer::Get(buffer::kChunkBlock); }
  t.Advance(20s);  // the task is gone: nothing trims any more
  t.RunUntilIdle();
  CHECK(buffer::BlockPool::ThisThread().cached_blocks == 1);
  CHECK(buffer::BlockPool::ThisThread().trimmed == trimmed);
  buffer::BlockPool::Clear();
}

}  // namespace
}  // namespace ambit::io
