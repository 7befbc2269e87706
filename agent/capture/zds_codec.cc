#include "agent/capture/zds_codec.h"

#include "common/net/cat.h"
#include "proto/zds.pb.h"

namespace ambit::agent::capture {
namespace {

namespace zds = ::istio::workload::zds;
using net::Cat;

Status ProtocolError(std::string_view what) {
  return absl::InvalidArgumentError(Cat("ZDS protocol error: ", what));
}

std::string Serialize(const google::protobuf::MessageLite& m) {
  std::string out;
  m.SerializeToString(&out);
  return out;
}

StatusOr<ZdsRequest> CheckUid(ZdsRequest r) {
  if (r.uid.empty()) {
    return ProtocolError(Cat(ZdsRequestKindName(r.kind), " without a pod uid"));
  }
  return r;
}

}  // namespace

std::string_view ZdsRequestKindName(ZdsRequestKind kind) {
  switch (kind) {
    case ZdsRequestKind::kAdd:
      return "AddWorkload";
    case ZdsRequestKind::kKeep:
      return "KeepWorkload";
    case ZdsRequestKind::kDel:
      return "DelWorkload";
    case ZdsRequestKind::kSnapshotSent:
      return "SnapshotSent";
  }
  return "unknown";
}

StatusOr<ZdsRequest> DecodeZdsRequest(std::string_view bytes, size_t fd_count) {
  zds::WorkloadRequest req;
  if (!req.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return ProtocolError(Cat("undecodable WorkloadRequest (", bytes.size(), " bytes)"));
  }
  ZdsRequest r;
  switch (req.payload_case()) {
    case zds::WorkloadRequest::kAdd: {
      r.kind = ZdsRequestKind::kAdd;
      r.uid = req.add().uid();
      if (fd_count != 1) {
        return ProtocolError(Cat("AddWorkload for pod ", r.uid,
                                 " must carry exactly one netns "
                                 "fd, got ",
                                 fd_count));
      }
      if (!req.add().has_workload_info()) {
        return ProtocolError(Cat("AddWorkload for pod ", r.uid, " without workload_info"));
      }
      const auto& wi = req.add().workload_info();
      r.info = {wi.name(), wi.namespace_(), wi.service_account()};
      return CheckUid(std::move(r));
    }
    case zds::WorkloadRequest::kKeep:
      r.kind = ZdsRequestKind::kKeep;
      r.uid = req.keep().uid();
      break;
    case zds::WorkloadRequest::kDel:
      r.kind = ZdsRequestKind::kDel;
      r.uid = req.del().uid();
      break;
    case zds::WorkloadRequest::kSnapshotSent:
      r.kind = ZdsRequestKind::kSnapshotSent;
      break;
    case zds::WorkloadRequest::PAYLOAD_NOT_SET:
      return ProtocolError("WorkloadRequest without a known payload (newer node agent?)");
  }
  if (fd_count != 0) {
    return ProtocolError(Cat(ZdsRequestKindName(r.kind), " must not carry fds, got ", fd_count));
  }
  if (r.kind == ZdsRequestKind::kSnapshotSent) return r;
  return CheckUid(std::move(r));
}

std::string EncodeZdsHello() {
  zds::ZdsHello h;
  h.set_version(zds::V1);
  return Serialize(h);
}

std::string EncodeZdsAck(std::string_view error) {
  zds::WorkloadResponse resp;
  resp.mutable_ack()->set_error(std::string(error));
  return Serialize(resp);
}

StatusOr<int> DecodeZdsHelloVersion(std::string_view bytes) {
  zds::ZdsHello h;
  if (!h.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("undecodable ZdsHello");
  }
  return static_cast<int>(h.version());
}

StatusOr<std::string> DecodeZdsAck(std::string_view bytes) {
  zds::WorkloadResponse resp;
  if (!resp.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("undecodable WorkloadResponse");
  }
  if (!resp.has_ack()) return absl::InvalidArgumentError("WorkloadResponse without ack");
  return resp.ack().error();
}

std::string EncodeZdsAdd(std::string_view uid, const ZdsWorkloadInfo& info) {
  zds::WorkloadRequest req;
  auto* add = req.mutable_add();
  add->set_uid(std::string(uid));
  add->mutable_workload_info()->set_name(info.name);
  add->mutable_workload_info()->set_namespace_(info.namespace_);
  add->mutable_workload_info()->set_service_account(info.service_account);
  return Serialize(req);
}

std::string EncodeZdsAddWithoutInfo(std::string_view uid) {
  zds::WorkloadRequest req;
  req.mutable_add()->set_uid(std::string(uid));
  return Serialize(req);
}

std::string EncodeZdsKeep(std::string_view uid) {
  zds::WorkloadRequest req;
  req.mutable_keep()->set_uid(std::string(uid));
  return Serialize(req);
}

std::string EncodeZdsDel(std::string_view uid) {
  zds::WorkloadRequest req;
  req.mutable_del()->set_uid(std::string(uid));
  return Serialize(req);
}

std::string EncodeZdsSnapshotSent() {
  zds::WorkloadRequest req;
  req.mutable_snapshot_sent();
  return Serialize(req);
}

}  // namespace ambit::agent::capture
