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
#pragma once

#include "common/buffer/block_pool.h"

namespace ambit::io {

using PooledBuffer = buffer::Block;

}  // namespace ambit::io
