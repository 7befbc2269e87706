// Fuzz target: the Kubernetes watch-event / list decoder of the waypoint's
// cluster mode (waypoint/kube/watch_decoder.h). Byte 0 picks: a watch event,
// a list, or a watch stream (the rest split into chunks at the byte values
// of byte 1, fed through the LineSplitter, each line decoded).
// Properties: a result is either an event/list or an error with a reason and
// a message; decoded objects have a name; an object re-encoded as an ADDED
// event decodes to the same key and resourceVersion.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_util.h"
#include "waypoint/kube/watch_decoder.h"

namespace k = ambit::waypoint::kube;

namespace {

const k::KindRef kKind{"gateway.networking.k8s.io/v1", "HTTPRoute"};

void CheckEvent(std::string_view line) {
  k::DecodedEvent d = k::DecodeWatchEvent(line, kKind);
  if (!d.event) {
    FUZZ_CHECK(d.error.reason != k::DecodeReason::kNone && !d.error.message.empty());
    return;
  }
  const k::WatchEvent& ev = *d.event;
  if (ev.type == k::EventType::kAdded || ev.type == k::EventType::kModified ||
      ev.type == k::EventType::kDeleted) {
    FUZZ_CHECK(!ev.object.name.empty());
    const std::string again = "{\"type\":\"ADDED\",\"object\":" + ev.object.body.dump() + "}";
    k::DecodedEvent d2 = k::DecodeWatchEvent(again, kKind);
    FUZZ_CHECK(d2.event && d2.event->object.Key() == ev.object.Key() &&
               d2.event->object.resource_version == ev.object.resource_version);
  }
  if (ev.type == k::EventType::kBookmark) FUZZ_CHECK(!ev.object.resource_version.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t which = data[0] % 3;
  const char sep = static_cast<char>(data[1]);
  std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
  switch (which) {
    case 0:
      CheckEvent(rest);
      break;
    case 1: {
      k::DecodedList d = k::DecodeList(rest, kKind);
      if (!d.list) {
        FUZZ_CHECK(d.error.reason != k::DecodeReason::kNone && !d.error.message.empty());
        break;
      }
      FUZZ_CHECK(!d.list->resource_version.empty());
      for (const auto& o : d.list->items) FUZZ_CHECK(!o.name.empty() && o.body.contains("kind"));
      break;
    }
    default: {
      k::LineSplitter s;
      size_t start = 0;
      for (size_t i = 0; i <= rest.size(); ++i) {
        if (i == rest.size() || rest[i] == sep) {
          if (!s.Feed(rest.substr(start, i - start))) return 0;
          while (auto line = s.Next()) {
            FUZZ_CHECK(line->find('\n') == std::string::npos && !line->empty());
            CheckEvent(*line);
          }
          start = i + 1;
        }
      }
      break;
    }
  }
  return 0;
}
