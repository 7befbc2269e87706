// Fuzz target: a ZDS datagram (istio.workload.zds.WorkloadRequest, one
// protobuf per SOCK_SEQPACKET message, ISTIO-COMPAT §4.1).
// Properties: a message that parses re-serializes to bytes that parse to
// the same message; the protocol rules read only set fields.
#include <cstddef>
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "proto/zds.pb.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The agent's receive buffer is 1024 bytes; larger datagrams are an error
  // before parsing, but parse them anyway: the parser must cope.
  static bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 is logged otherwise
    return true;
  }();
  (void)quiet;
  istio::workload::zds::WorkloadRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;

  std::string uid;
  switch (req.payload_case()) {
    case istio::workload::zds::WorkloadRequest::kAdd:
      uid = req.add().uid();
      if (req.add().has_workload_info()) {
        uid += req.add().workload_info().name() + req.add().workload_info().namespace_() +
               req.add().workload_info().service_account();
      }
      break;
    case istio::workload::zds::WorkloadRequest::kDel: uid = req.del().uid(); break;
    case istio::workload::zds::WorkloadRequest::kKeep: uid = req.keep().uid(); break;
    default: break;
  }
  (void)uid;

  std::string once = req.SerializeAsString();
  istio::workload::zds::WorkloadRequest again;
  FUZZ_CHECK(again.ParseFromString(once));
  FUZZ_CHECK(again.SerializeAsString() == once);
  FUZZ_CHECK(again.payload_case() == req.payload_case());

  istio::workload::zds::WorkloadResponse resp;
  resp.mutable_ack()->set_error(uid.empty() ? "" : "unknown workload");
  FUZZ_CHECK(resp.ByteSizeLong() <= 1024 + once.size());
  return 0;
}
