// ChunkQueue: byte order across blocks, spans that stay valid while appending,
// adopted blocks, and that an emptied queue holds no blocks (they are back in
// the pool, where the next writes find them).
#include <doctest/doctest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "common/buffer/chunk_queue.h"

namespace ambit::buffer {
namespace {

std::vector<std::byte> Pattern(size_t n, size_t seed = 0) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<unsigned char>((i + seed) * 7));
  return v;
}

std::vector<std::byte> Drain(ChunkQueue& q) {
  std::vector<std::byte> out;
  while (!q.empty()) {
    auto run = q.Front();
    REQUIRE(!run.empty());
    out.insert(out.end(), run.begin(), run.end());
    q.Consume(run.size());
  }
  return out;
}

TEST_CASE("ChunkQueue: bytes come out in order across block boundaries") {
  BlockPool::Clear();
  ChunkQueue q;
  auto a = Pattern(100), b = Pattern(3 * kChunkBlock + 17, 5), c = Pattern(1);
  q.Append(a);
  q.Append(b);
  q.Append(c);
  CHECK(q.size() == a.size() + b.size() + c.size());
  CHECK(q.blocks() == 4);  // 100 + 3 * 64 KiB + 18 bytes fill four blocks
  std::vector<std::byte> want = a;
  want.insert(want.end(), b.begin(), b.end());
  want.insert(want.end(), c.begin(), c.end());
  CHECK(Drain(q) == want);
  CHECK(q.blocks() == 0);
  CHECK(BlockPool::ThisThread().cached_blocks == 4);  // all back in the pool
}

TEST_CASE("ChunkQueue: small appends share the tail block; Pull copies and consumes") {
  BlockPool::Clear();
  ChunkQueue q;
  for (int i = 0; i < 100; ++i) q.Append(Pattern(10, static_cast<size_t>(i)));
  CHECK(q.blocks() == 1);
  std::vector<std::byte> out(1000);
  CHECK(q.Pull(std::span<std::byte>(out).first(250)) == 250);
  CHECK(q.size() == 750);
  CHECK(q.Pull(std::span<std::byte>(out).subspan(250)) == 750);
  CHECK(q.empty());
  CHECK(q.Pull(out) == 0);
  std::vector<std::byte> want;
  for (int i = 0; i < 100; ++i) {
    auto p = Pattern(10, static_cast<size_t>(i));
    want.insert(want.end(), p.begin(), p.end());
  }
  CHECK(out == want);
}

TEST_CASE("ChunkQueue: a span from Front stays valid while bytes are appended") {
  BlockPool::Clear();
  ChunkQueue q;
  q.Append(Pattern(1000));
  auto run = q.Front();
  const std::byte* p = run.data();
  q.Append(Pattern(2 * kChunkBlock, 3));  // fills the tail's room, then new blocks
  CHECK(q.Front().data() == p);           // nothing moved
  CHECK(std::memcmp(run.data(), Pattern(1000).data(), 1000) == 0);
  // The front run grew in place (same block) up to the block's end.
  CHECK(q.Front().size() == kChunkBlock);
  q.Consume(q.size());
  CHECK(q.empty());
  CHECK(q.blocks() == 0);
}

TEST_CASE("ChunkQueue: adopts filled blocks without a copy; small fills are merged") {
  BlockPool::Clear();
  ChunkQueue q;
  Block big = Block::Get(kLargeBlock);
  auto data = Pattern(200000);
  std::memcpy(big.data(), data.data(), data.size());
  std::byte* p = big.data();
  q.Append(std::move(big), data.size());
  CHECK(q.Front().data() == p);  // the very block, no copy
  CHECK(q.Front().size() == data.size());
  Block small = Block::Get(kSmallBlock);
  std::memset(small.data(), 0x5a, 10);
  q.Append(std::move(small), 10);  // fits the big block's room: copied, block released
  CHECK(q.blocks() == 1);
  CHECK(q.size() == data.size() + 10);
  q.Append(Block::Get(kSmallBlock), 0);  // nothing to adopt
  CHECK(q.blocks() == 1);
  auto out = Drain(q);
  REQUIRE(out.size() == data.size() + 10);
  CHECK(std::memcmp(out.data(), data.data(), data.size()) == 0);
  CHECK(out.back() == std::byte{0x5a});
}

TEST_CASE("ChunkQueue: a steady stream reuses pooled blocks (no allocation per write)") {
  BlockPool::Clear();
  ChunkQueue q;
  auto chunk = Pattern(256u << 10);
  q.Append(chunk);  // warm-up: 4 blocks from malloc
  q.Consume(q.size());
  const PoolStats before = BlockPool::ThisThread();
  for (int i = 0; i < 100; ++i) {
    q.Append(chunk);
    std::vector<std::byte> out(100u << 10);
    while (!q.empty()) (void)q.Pull(out);
  }
  const PoolStats after = BlockPool::ThisThread();
  CHECK(after.gets - before.gets == 400);
  CHECK(after.hits - before.hits == 400);  // every block came from the pool
  CHECK(after.dropped == before.dropped);
}

TEST_CASE("ChunkQueue: Clear and destruction give every block back") {
  BlockPool::Clear();
  {
    ChunkQueue q;
    q.Append(Pattern(3 * kChunkBlock));
    ChunkQueue moved = std::move(q);
    CHECK(moved.size() == 3 * kChunkBlock);
    moved.Consume(10);
    CHECK(moved.size() == 3 * kChunkBlock - 10);
  }
  CHECK(BlockPool::ThisThread().cached_blocks == 3);
  ChunkQueue q;
  q.Append(Pattern(10));
  q.Clear();
  CHECK(q.empty());
  CHECK(q.Front().empty());
  CHECK(BlockPool::ThisThread().cached_blocks == 3);
  BlockPool::Clear();
}

}  // namespace
}  // namespace ambit::buffer
