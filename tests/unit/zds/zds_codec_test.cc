#include "agent/capture/zds_codec.h"

#include <doctest/doctest.h>

#include <string>

namespace ambit::agent::capture {
namespace {

std::string Msg(const Status& s) { return std::string(s.message()); }

TEST_CASE("hello and ack bytes are the zds.proto wire format") {
  // ZdsHello{version=V1}: field 1 varint 1.
  CHECK(EncodeZdsHello() == std::string("\x08\x01", 2));
  // WorkloadResponse{ack{}}: field 1, length 0.
  CHECK(EncodeZdsAck("") == std::string("\x0a\x00", 2));
  CHECK(EncodeZdsAck("no") == std::string("\x0a\x04\x0a\x02no", 6));
  CHECK(*DecodeZdsAck(EncodeZdsAck("boom")) == "boom");
  CHECK(*DecodeZdsHelloVersion(EncodeZdsHello()) == 1);
}

TEST_CASE("AddWorkload decodes with exactly one fd") {
  std::string bytes = EncodeZdsAdd("uid-1", {"pod-a", "ns-a", "sa-a"});
  // WorkloadRequest.add = field 1; AddWorkload.uid = field 1.
  CHECK(bytes.substr(0, 2) == std::string("\x0a\x1c", 2));
  auto r = DecodeZdsRequest(bytes, 1);
  REQUIRE(r.ok());
  CHECK(r->kind == ZdsRequestKind::kAdd);
  CHECK(r->uid == "uid-1");
  CHECK(r->info == ZdsWorkloadInfo{"pod-a", "ns-a", "sa-a"});

  auto none = DecodeZdsRequest(bytes, 0);
  CHECK(Msg(none.status()) ==
        "ZDS protocol error: AddWorkload for pod uid-1 must carry exactly one netns fd, got 0");
  auto two = DecodeZdsRequest(bytes, 2);
  CHECK(Msg(two.status()).find("exactly one netns fd, got 2") != std::string::npos);
}

TEST_CASE("workload_info is mandatory, uid must be set") {
  auto r = DecodeZdsRequest(EncodeZdsAddWithoutInfo("uid-2"), 1);
  CHECK(Msg(r.status()) == "ZDS protocol error: AddWorkload for pod uid-2 without workload_info");
  auto k = DecodeZdsRequest(EncodeZdsKeep(""), 0);
  CHECK(Msg(k.status()) == "ZDS protocol error: KeepWorkload without a pod uid");
}

TEST_CASE("non-Add requests must not carry fds") {
  auto d = DecodeZdsRequest(EncodeZdsDel("u"), 1);
  CHECK(Msg(d.status()) == "ZDS protocol error: DelWorkload must not carry fds, got 1");
  auto s = DecodeZdsRequest(EncodeZdsSnapshotSent(), 1);
  CHECK(Msg(s.status()) == "ZDS protocol error: SnapshotSent must not carry fds, got 1");
  auto k = DecodeZdsRequest(EncodeZdsKeep("u"), 0);
  REQUIRE(k.ok());
  CHECK(k->kind == ZdsRequestKind::kKeep);
  // DelWorkload.uid is field 2 on the wire.
  CHECK(EncodeZdsDel("u") == std::string("\x12\x03\x12\x01u", 5));
  auto del = DecodeZdsRequest(EncodeZdsDel("u"), 0);
  REQUIRE(del.ok());
  CHECK(del->uid == "u");
}

TEST_CASE("garbage and unknown payloads are protocol errors") {
  auto g = DecodeZdsRequest(std::string("\xff\xff\xff", 3), 0);
  CHECK(Msg(g.status()) == "ZDS protocol error: undecodable WorkloadRequest (3 bytes)");
  // Field 4 is reserved: an unknown field, so no payload.
  auto u = DecodeZdsRequest(std::string("\x22\x00", 2), 0);
  CHECK(Msg(u.status()).find("without a known payload") != std::string::npos);
  auto empty = DecodeZdsRequest("", 0);
  CHECK(!empty.ok());
}

}  // namespace
}  // namespace ambit::agent::capture
