// Decoding what the Kubernetes API server sends for list + watch:
//  - a list (GET /apis/G/V/PLURAL): {"kind":"XList","metadata":{
//    "resourceVersion":RV,"continue":TOKEN},"items":[...]};
//  - a watch stream (?watch=1): one JSON object per line,
//    {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}; an ERROR
//    carries a metav1.Status ({"code":410,"reason":"Expired",...}).
// Pure functions, any thread. Every malformed input is a DecodeError with a
// reason (counted by it) and a message; nothing throws out of here.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ambit::waypoint::kube {

inline constexpr size_t kMaxEventBytes = 4 * 1024 * 1024;   // one watch line
inline constexpr size_t kMaxListBytes = 64 * 1024 * 1024;   // one list page
inline constexpr size_t kMaxListItems = 100000;             // over all pages of a kind

enum class DecodeReason : uint8_t {
  kNone,
  kJson,        // not JSON
  kShape,       // JSON, but not an event/list/object (missing or mistyped fields)
  kUnknownType, // an event type we do not know
  kWrongKind,   // an object of another kind than the one watched
  kTooLarge,    // over kMaxEventBytes / kMaxListBytes / kMaxListItems
};
std::string_view DecodeReasonName(DecodeReason r);  // "json", "shape", ...

struct DecodeError {
  DecodeReason reason = DecodeReason::kNone;
  std::string message;
};

// One Kubernetes object, with the metadata the watcher needs pulled out.
struct KubeObject {
  std::string ns, name, uid, resource_version;
  int64_t generation = 0;
  nlohmann::json body;  // the whole object (apiVersion/kind filled in if a list omitted them)
  std::string Key() const { return ns + "/" + name; }
};

enum class EventType : uint8_t { kAdded, kModified, kDeleted, kBookmark, kError };
std::string_view EventTypeName(EventType t);

struct WatchEvent {
  EventType type = EventType::kAdded;
  KubeObject object;  // ADDED/MODIFIED/DELETED: the object; BOOKMARK: only resource_version
  // ERROR: the metav1.Status.
  int code = 0;
  std::string reason, message;
};

struct DecodedEvent {
  std::optional<WatchEvent> event;
  DecodeError error;  // reason != kNone iff !event
};

struct ObjectList {
  std::string resource_version;
  std::string continue_token;
  std::vector<KubeObject> items;
};

struct DecodedList {
  std::optional<ObjectList> list;
  DecodeError error;
};

// What the watched kind is: objects of another kind are refused; list items
// without apiVersion/kind get these.
struct KindRef {
  std::string_view api_version;  // "gateway.networking.k8s.io/v1"
  std::string_view kind;         // "HTTPRoute"
};

DecodedEvent DecodeWatchEvent(std::string_view line, const KindRef& kind);
DecodedList DecodeList(std::string_view body, const KindRef& kind);
// A metav1.Status body (an error response): {code, reason, message}; a body
// that is not one yields code 0 and the text (bounded) as the message.
WatchEvent DecodeStatus(std::string_view body);

// Splits a watch stream's body bytes into lines (events), whatever the
// chunk boundaries. A line over kMaxEventBytes is an error: the stream has
// to be dropped (the rest of the line cannot be told from the next event).
class LineSplitter {
 public:
  // Appends bytes; false if the pending line got too long.
  bool Feed(std::string_view bytes);
  // The next complete line (without '\n', '\r' trimmed), if any. Empty lines are skipped.
  std::optional<std::string> Next();
  size_t pending() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace ambit::waypoint::kube
