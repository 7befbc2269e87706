// Stream side of an HTTP/2 connection: per-stream send queue, received
// header accumulation and flow-control accounting. Owned by H2Conn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/buffer/chunk_queue.h"
#include "common/http2/h2_types.h"

namespace ambit::http2 {

// Outgoing bytes queued by the user and not yet framed, in pooled 64 KiB
// blocks: a write copies into the tail block, the framer pulls from the front
// and hands drained blocks straight back to the worker's pool, so bulk writes
// reuse the same resident pages instead of a fresh heap chunk per write (which
// glibc trimmed back to the kernel and the next write faulted in again). An
// idle stream's queue owns no memory.
using H2SendQueue = buffer::ChunkQueue;

struct H2Stream {
  explicit H2Stream(H2StreamId stream_id) : id(stream_id) {}

  H2StreamId id;
  H2SendQueue send_queue;
  bool has_data_provider = false;  // response/request submitted with a body
  bool deferred = false;           // read callback returned DEFERRED
  bool write_closed = false;       // CloseWrite() called
  bool end_sent = false;           // END_STREAM handed to nghttp2
  bool end_received = false;
  bool headers_reported = false;
  // Server rejection: RST_STREAM(NO_ERROR) once our END_STREAM is out, so
  // the client's half closes too (RFC 9113 §8.1).
  bool reset_after_end = false;
  // Trailers to send once the queue is drained (SubmitTrailers).
  std::optional<H2Headers> trailers;
  // Received header block being accumulated and its HPACK-decoded size.
  H2Headers headers;
  size_t header_bytes = 0;
  bool header_overflow = false;
  // Bytes delivered to the user that were not yet Consume()d.
  size_t unconsumed = 0;
};

}  // namespace ambit::http2
