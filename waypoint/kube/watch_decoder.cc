#include "waypoint/kube/watch_decoder.h"

#include <fmt/format.h>

namespace ambit::waypoint::kube {

namespace {

using nlohmann::json;

constexpr int kMaxDepth = 128;

DecodeError Err(DecodeReason r, std::string msg) { return {r, std::move(msg)}; }

// nlohmann's parser recurses per nesting level: refuse deep input before it.
bool DepthOk(std::string_view text) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (char c : text) {
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

std::optional<json> Parse(std::string_view text, DecodeError* err) {
  if (!DepthOk(text)) {
    *err = Err(DecodeReason::kTooLarge, fmt::format("JSON nested deeper than {}", kMaxDepth));
    return std::nullopt;
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    *err = Err(DecodeReason::kJson, "not valid JSON");
    return std::nullopt;
  }
  return j;
}

std::string StringField(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// metadata of an object; false (with *err) when the shape is wrong.
bool ObjectFromJson(json body, const KindRef& kind, bool fill_kind, KubeObject* out,
                    DecodeError* err) {
  if (!body.is_object()) {
    *err = Err(DecodeReason::kShape, "object is not a JSON object");
    return false;
  }
  auto kit = body.find("kind");
  if (kit == body.end() && fill_kind) {
    body["kind"] = std::string(kind.kind);
    body["apiVersion"] = std::string(kind.api_version);
  } else if (kit == body.end() || !kit->is_string()) {
    *err = Err(DecodeReason::kShape, "object has no kind");
    return false;
  } else if (kit->get<std::string>() != kind.kind) {
    *err = Err(DecodeReason::kWrongKind, fmt::format("object of kind {:.64} in a watch of {}",
                                                     kit->get<std::string>(), kind.kind));
    return false;
  }
  if (!body.contains("apiVersion")) body["apiVersion"] = std::string(kind.api_version);
  auto mit = body.find("metadata");
  if (mit == body.end() || !mit->is_object()) {
    *err = Err(DecodeReason::kShape, "object has no metadata");
    return false;
  }
  const json& md = *mit;
  out->name = StringField(md, "name");
  out->ns = StringField(md, "namespace");
  out->uid = StringField(md, "uid");
  out->resource_version = StringField(md, "resourceVersion");
  auto git = md.find("generation");
  out->generation = git != md.end() && git->is_number_integer() ? git->get<int64_t>() : 0;
  if (out->name.empty()) {
    *err = Err(DecodeReason::kShape, "object has no metadata.name");
    return false;
  }
  out->body = std::move(body);
  return true;
}

void StatusInto(const json& st, WatchEvent* ev) {
  if (!st.is_object()) return;
  auto cit = st.find("code");
  if (cit != st.end() && cit->is_number_integer()) ev->code = cit->get<int>();
  ev->reason = StringField(st, "reason");
  ev->message = StringField(st, "message").substr(0, 512);
}

}  // namespace

std::string_view DecodeReasonName(DecodeReason r) {
  switch (r) {
    case DecodeReason::kNone: return "none";
    case DecodeReason::kJson: return "json";
    case DecodeReason::kShape: return "shape";
    case DecodeReason::kUnknownType: return "unknown_type";
    case DecodeReason::kWrongKind: return "wrong_kind";
    case DecodeReason::kTooLarge: return "too_large";
  }
  return "unknown";
}

std::string_view EventTypeName(EventType t) {
  switch (t) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
    case EventType::kBookmark: return "BOOKMARK";
    case EventType::kError: return "ERROR";
  }
  return "?";
}

DecodedEvent DecodeWatchEvent(std::string_view line, const KindRef& kind) {
  DecodedEvent out;
  if (line.size() > kMaxEventBytes) {
    out.error = Err(DecodeReason::kTooLarge, fmt::format("watch event of {} bytes (limit {})",
                                                         line.size(), kMaxEventBytes));
    return out;
  }
  std::optional<json> j = Parse(line, &out.error);
  if (!j) return out;
  if (!j->is_object()) {
    out.error = Err(DecodeReason::kShape, "watch event is not a JSON object");
    return out;
  }
  auto tit = j->find("type");
  auto oit = j->find("object");
  if (tit == j->end() || !tit->is_string() || oit == j->end() || !oit->is_object()) {
    out.error = Err(DecodeReason::kShape, "watch event needs a string type and an object");
    return out;
  }
  const std::string type = tit->get<std::string>();
  WatchEvent ev;
  if (type == "ADDED") ev.type = EventType::kAdded;
  else if (type == "MODIFIED") ev.type = EventType::kModified;
  else if (type == "DELETED") ev.type = EventType::kDeleted;
  else if (type == "BOOKMARK") ev.type = EventType::kBookmark;
  else if (type == "ERROR") ev.type = EventType::kError;
  else {
    out.error = Err(DecodeReason::kUnknownType, fmt::format("unknown watch event type {:.32}", type));
    return out;
  }
  if (ev.type == EventType::kError) {
    StatusInto(*oit, &ev);
    out.event = std::move(ev);
    return out;
  }
  if (ev.type == EventType::kBookmark) {
    auto mit = oit->find("metadata");
    if (mit != oit->end() && mit->is_object()) {
      ev.object.resource_version = StringField(*mit, "resourceVersion");
    }
    if (ev.object.resource_version.empty()) {
      out.error = Err(DecodeReason::kShape, "BOOKMARK without metadata.resourceVersion");
      return out;
    }
    out.event = std::move(ev);
    return out;
  }
  if (!ObjectFromJson(std::move(*oit), kind, /*fill_kind=*/false, &ev.object, &out.error)) {
    return out;
  }
  out.event = std::move(ev);
  return out;
}

DecodedList DecodeList(std::string_view body, const KindRef& kind) {
  DecodedList out;
  if (body.size() > kMaxListBytes) {
    out.error = Err(DecodeReason::kTooLarge,
                    fmt::format("list of {} bytes (limit {})", body.size(), kMaxListBytes));
    return out;
  }
  std::optional<json> j = Parse(body, &out.error);
  if (!j) return out;
  if (!j->is_object()) {
    out.error = Err(DecodeReason::kShape, "list is not a JSON object");
    return out;
  }
  auto mit = j->find("metadata");
  auto iit = j->find("items");
  if (mit == j->end() || !mit->is_object() || iit == j->end() ||
      !(iit->is_array() || iit->is_null())) {
    out.error = Err(DecodeReason::kShape, "list needs metadata and items");
    return out;
  }
  ObjectList list;
  list.resource_version = StringField(*mit, "resourceVersion");
  list.continue_token = StringField(*mit, "continue");
  if (list.resource_version.empty()) {
    out.error = Err(DecodeReason::kShape, "list without metadata.resourceVersion");
    return out;
  }
  if (iit->is_array()) {
    if (iit->size() > kMaxListItems) {
      out.error = Err(DecodeReason::kTooLarge,
                      fmt::format("list of {} items (limit {})", iit->size(), kMaxListItems));
      return out;
    }
    list.items.reserve(iit->size());
    size_t index = 0;
    for (json& item : *iit) {
      KubeObject obj;
      DecodeError e;
      if (!ObjectFromJson(std::move(item), kind, /*fill_kind=*/true, &obj, &e)) {
        out.error = Err(e.reason, fmt::format("items[{}]: {}", index, e.message));
        return out;
      }
      list.items.push_back(std::move(obj));
      ++index;
    }
  }
  out.list = std::move(list);
  return out;
}

WatchEvent DecodeStatus(std::string_view body) {
  WatchEvent ev;
  ev.type = EventType::kError;
  DecodeError err;
  std::optional<json> j = body.size() <= kMaxEventBytes ? Parse(body, &err) : std::nullopt;
  if (j && j->is_object()) {
    StatusInto(*j, &ev);
  } else {
    ev.message = std::string(body.substr(0, 256));
  }
  return ev;
}

bool LineSplitter::Feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  buf_.append(bytes);
  const size_t last_nl = buf_.rfind('\n');
  const size_t tail_start = last_nl == std::string::npos || last_nl < pos_ ? pos_ : last_nl + 1;
  return buf_.size() - tail_start <= kMaxEventBytes;
}

std::optional<std::string> LineSplitter::Next() {
  for (;;) {
    const size_t nl = buf_.find('\n', pos_);
    if (nl == std::string::npos) {
      if (pos_ > 0) {
        buf_.erase(0, pos_);
        pos_ = 0;
      }
      return std::nullopt;
    }
    std::string line = buf_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) return line;
  }
}

}  // namespace ambit::waypoint::kube
