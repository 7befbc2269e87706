// Byte relays of the data path, both directions at once (io::WhenAll):
//   RelayTcpStream: a TCP socket ↔ an HBONE stream (FIN ↔ END_STREAM,
//                   TCP RST ↔ RST_STREAM(CONNECT_ERROR));
//   RelayTcpTcp:    two TCP sockets (plaintext passthrough, 15006 inbound).
// Half-closes are propagated; an error in one direction aborts both (the TCP
// side is closed with RST). Bytes are reported to the observer as they move.
// The caller owns the fds and closes them after the relay returns.
#pragma once

#include <cstdint>

#include "common/base/status.h"
#include "common/hbone/stream.h"
#include "common/io/cancel.h"
#include "common/io/loop.h"
#include "common/io/task.h"

namespace ambit::hbone {

class RelayObserver {
 public:
  virtual ~RelayObserver() = default;
  // "up": from the TCP side that started the relay (downstream) outward.
  virtual void OnUp(size_t bytes) = 0;
  // "down": back toward that TCP side.
  virtual void OnDown(size_t bytes) = 0;
};

struct RelayResult {
  uint64_t up = 0;
  uint64_t down = 0;
  Status status;  // first error of either direction; OK when both ended cleanly
};

// `scope` cancels the relay from outside (policy change, drain deadline).
io::Task<RelayResult> RelayTcpStream(io::Loop& loop, int tcp_fd, HboneStream& stream,
                                     io::CancelScope& scope, RelayObserver* observer);
io::Task<RelayResult> RelayTcpTcp(io::Loop& loop, int downstream_fd, int upstream_fd,
                                  io::CancelScope& scope, RelayObserver* observer);

// Makes close(2) send RST instead of FIN (SO_LINGER 0).
void AbortOnClose(int fd);

}  // namespace ambit::hbone
