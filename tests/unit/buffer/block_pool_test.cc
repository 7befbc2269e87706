// Block pool: LIFO reuse per size class, the per-thread bound, Trim() of
// blocks unused over an interval, per-thread isolation, and no leak (every
// block got is either cached or freed: the ASan build checks the latter).
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "common/buffer/block_pool.h"

namespace ambit::buffer {
namespace {

struct CleanPool {
  CleanPool() { BlockPool::Clear(); }
  ~CleanPool() { BlockPool::Clear(); }
};

TEST_CASE("Block: a released block is the next one handed out (LIFO reuse)") {
  CleanPool clean;
  std::byte* first = nullptr;
  {
    Block b = Block::Get(kChunkBlock);
    REQUIRE(b.size() == kChunkBlock);
    first = b.data();
    b.data()[0] = std::byte{1};
    b.data()[b.size() - 1] = std::byte{2};  // the whole block is ours
  }
  CHECK(BlockPool::ThisThread().cached_blocks == 1);
  CHECK(BlockPool::ThisThread().cached_bytes == kChunkBlock);
  const PoolStats before = BlockPool::ThisThread();
  Block again = Block::Get(kChunkBlock);
  CHECK(again.data() == first);
  const PoolStats after = BlockPool::ThisThread();
  CHECK(after.gets == before.gets + 1);
  CHECK(after.hits == before.hits + 1);
  CHECK(after.cached_blocks == 0);
}

TEST_CASE("Block: classes are kept apart; odd sizes and empty blocks are never cached") {
  CleanPool clean;
  { Block a = Block::Get(kSmallBlock); }
  Block big = Block::Get(kLargeBlock);  // not served by the cached 16 KiB block
  CHECK(big.size() == kLargeBlock);
  CHECK(BlockPool::ThisThread().cached_blocks == 1);
  {
    Block odd = Block::Get(1000);
    CHECK(odd.size() == 1000u);
  }
  CHECK(BlockPool::ThisThread().cached_blocks == 1);
  CHECK(BlockPool::MaxCached(1000) == 0);
  CHECK(Block::Get(0).empty());
}

TEST_CASE("Block: moves transfer ownership; Release is idempotent") {
  CleanPool clean;
  Block a = Block::Get(kSmallBlock);
  std::byte* p = a.data();
  Block b = std::move(a);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(b.data() == p);
  Block c;
  c = std::move(b);
  CHECK(c.data() == p);
  c.Release();
  c.Release();
  CHECK(c.empty());
  CHECK(BlockPool::ThisThread().cached_blocks == 1);
}

TEST_CASE("BlockPool: the cache is bounded per class; the rest is freed") {
  CleanPool clean;
  const size_t cap = BlockPool::MaxCached(kChunkBlock);
  REQUIRE(cap > 0);
  const PoolStats before = BlockPool::ThisThread();
  std::vector<Block> many;
  for (size_t i = 0; i < cap + 10; ++i) many.push_back(Block::Get(kChunkBlock));
  many.clear();
  const PoolStats after = BlockPool::ThisThread();
  CHECK(after.cached_blocks == cap);
  CHECK(after.dropped - before.dropped == 10);
  // A second burst of the same size is served entirely from the cache.
  for (size_t i = 0; i < cap; ++i) many.push_back(Block::Get(kChunkBlock));
  CHECK(BlockPool::ThisThread().hits - after.hits == cap);
  many.clear();
}

TEST_CASE("BlockPool: Trim frees what sat unused since the last Trim, keeps what was used") {
  CleanPool clean;
  std::vector<Block> burst;
  for (int i = 0; i < 8; ++i) burst.push_back(Block::Get(kChunkBlock));
  burst.clear();
  CHECK(BlockPool::ThisThread().cached_blocks == 8);
  (void)BlockPool::Trim();  // starts an interval with 8 cached
  // In this interval at most 3 were out at once: 5 were never needed.
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 3; ++i) burst.push_back(Block::Get(kChunkBlock));
    burst.clear();
  }
  CHECK(BlockPool::Trim() == 5);
  CHECK(BlockPool::ThisThread().cached_blocks == 3);
  // An idle interval gives back the rest.
  CHECK(BlockPool::Trim() == 3);
  CHECK(BlockPool::ThisThread().cached_blocks == 0);
  CHECK(BlockPool::ThisThread().trimmed >= 8);
}

TEST_CASE("BlockPool: each thread has its own cache") {
  CleanPool clean;
  { Block b = Block::Get(kSmallBlock); }
  size_t other_before = 99, other_after = 99;
  std::thread t([&] {
    other_before = BlockPool::ThisThread().cached_blocks;
    { Block b = Block::Get(kSmallBlock); }
    other_after = BlockPool::ThisThread().cached_blocks;
  });
  t.join();
  CHECK(other_before == 0);  // the main thread's block is not visible there
  CHECK(other_after == 1);
  CHECK(BlockPool::ThisThread().cached_blocks == 1);
}

}  // namespace
}  // namespace ambit::buffer
