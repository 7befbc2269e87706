// ZDS codec (sans-I/O): ZdsHello / WorkloadRequest / WorkloadResponse bytes
// <-> plain structs, plus the per-message rules of ISTIO-COMPAT §4.1 that need
// no connection state (fd counts, mandatory workload_info, non-empty uid).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/base/status.h"

namespace ambit::agent::capture {

struct ZdsWorkloadInfo {
  std::string name;
  std::string namespace_;
  std::string service_account;
  friend bool operator==(const ZdsWorkloadInfo&, const ZdsWorkloadInfo&) = default;
};

enum class ZdsRequestKind { kAdd, kKeep, kDel, kSnapshotSent };
std::string_view ZdsRequestKindName(ZdsRequestKind kind);

struct ZdsRequest {
  ZdsRequestKind kind = ZdsRequestKind::kSnapshotSent;
  std::string uid;       // Add, Keep, Del
  ZdsWorkloadInfo info;  // Add only
};

// Parses one datagram that arrived with `fd_count` SCM_RIGHTS fds. Any error
// is a protocol error (InvalidArgument) with an operator-readable message.
StatusOr<ZdsRequest> DecodeZdsRequest(std::string_view bytes, size_t fd_count);

// Client → node agent.
std::string EncodeZdsHello();
std::string EncodeZdsAck(std::string_view error);  // "" = ack, else NACK

// For fakes and tests (node agent side).
StatusOr<int> DecodeZdsHelloVersion(std::string_view bytes);
StatusOr<std::string> DecodeZdsAck(std::string_view bytes);  // the error text
std::string EncodeZdsAdd(std::string_view uid, const ZdsWorkloadInfo& info);
std::string EncodeZdsAddWithoutInfo(std::string_view uid);
std::string EncodeZdsKeep(std::string_view uid);
std::string EncodeZdsDel(std::string_view uid);
std::string EncodeZdsSnapshotSent();

}  // namespace ambit::agent::capture
