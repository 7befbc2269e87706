// PooledBuffer: a receive buffer borrowed from this thread's block pool
// (common/buffer/block_pool.h: per-thread, bounded free lists of 16 KiB,
// 64 KiB and 256 KiB blocks).
//
//   io::PooledBuffer buf = io::PooledBuffer::Get(16 << 10);  // uninitialised bytes
//   co_await loop.Recv(fd, buf.span());
//   buf.Release();            // back to this thread's free list (also on destruction)
//
// Relays take a buffer only once their socket is readable and give it back when
// the socket is drained, so an idle connection holds none (BENCHMARKS.md memory
// goal). A buffer must be released on the thread that got it (coroutines of one
// Loop do).
//
// A worker runs TrimPoolEvery() for its lifetime: blocks its loop did not need
// for a whole period go back to the allocator, so a past burst does not pin its
// peak (up to 11 MiB per thread) in an idle worker.
#pragma once

#include <memory>

#include "common/base/clock.h"
#include "common/buffer/block_pool.h"
#include "common/io/cancel.h"
#include "common/io/task.h"

namespace ambit::io {

using PooledBuffer = buffer::Block;

class Loop;

// Every `period`, frees the pooled blocks of this thread that sat unused since
// the previous tick (buffer::BlockPool::Trim). Ends when `scope` is cancelled.
Task<void> TrimPoolEvery(Loop& loop, base::Duration period, std::shared_ptr<CancelScope> scope);

}  // namespace ambit::io
