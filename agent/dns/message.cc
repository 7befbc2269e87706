#include "agent/dns/message.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace ambit::dns {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxLabelLength = 63;
constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kFlagAa = 0x0400;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRd = 0x0100;
constexpr uint16_t kFlagRa = 0x0080;
constexpr uint16_t kFlagCd = 0x0010;

uint16_t Get16(std::span<const uint8_t> m, size_t at) {
  return static_cast<uint16_t>((m[at] << 8) | m[at + 1]);
}

void Put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xff));
}

void Put32(std::vector<uint8_t>& out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v & 0xffff));
}

void Set16(std::vector<uint8_t>& out, size_t at, uint16_t v) {
  out[at] = static_cast<uint8_t>(v >> 8);
  out[at + 1] = static_cast<uint8_t>(v & 0xff);
}

bool PlainByte(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '*';
}

// Reads the question name (no compression: nothing precedes it to point at).
ParseError ReadQuestionName(std::span<const uint8_t> m, size_t* pos, Query* q, std::string* detail) {
  size_t p = *pos;
  size_t wire = 0;
  for (;;) {
    if (p >= m.size()) {
      *detail = "question name runs past the end";
      return ParseError::kTruncated;
    }
    uint8_t len = m[p++];
    ++wire;
    if (len == 0) break;
    if ((len & 0xc0) != 0) {
      *detail = "compression pointer or extended label in the question";
      return ParseError::kBadName;
    }
    if (len > kMaxLabelLength) {
      *detail = fmt::format("label of {} bytes", len);
      return ParseError::kBadName;
    }
    wire += len;
    if (wire > kMaxNameLength) {
      *detail = "question name longer than 255 bytes";
      return ParseError::kBadName;
    }
    if (p + len > m.size()) {
      *detail = "question label runs past the end";
      return ParseError::kTruncated;
    }
    if (!q->name.empty()) q->name.push_back('.');
    for (size_t i = 0; i < len; ++i) {
      uint8_t c = m[p + i];
      if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c - 'A' + 'a');
      if (!PlainByte(c)) q->plain_name = false;
      q->name.push_back(c >= 0x21 && c < 0x7f ? static_cast<char>(c) : '?');
    }
    p += len;
  }
  *pos = p;
  return ParseError::kNone;
}

}  // namespace

// Skips a name anywhere in a message (compression pointers allowed; a
// pointer ends the name). Returns false when it runs past the end.
bool SkipName(std::span<const uint8_t> m, size_t* pos, bool* root) {
  size_t p = *pos;
  *root = true;
  for (size_t labels = 0; labels < 128; ++labels) {
    if (p >= m.size()) return false;
    uint8_t len = m[p];
    if (len == 0) {
      *pos = p + 1;
      return true;
    }
    *root = false;
    if ((len & 0xc0) == 0xc0) {
      if (p + 2 > m.size()) return false;
      *pos = p + 2;
      return true;
    }
    if ((len & 0xc0) != 0) return false;  // extended label types (RFC 6891 §5): obsolete
    p += 1 + len;
  }
  return false;
}

namespace {

ParseError ReadRecords(std::span<const uint8_t> m, size_t* pos, size_t count, bool additional,
                       Query* q, std::string* detail) {
  for (size_t i = 0; i < count; ++i) {
    bool root = false;
    if (!SkipName(m, pos, &root) || *pos + 10 > m.size()) {
      *detail = "a record runs past the end";
      return ParseError::kTruncated;
    }
    uint16_t type = Get16(m, *pos);
    uint16_t klass = Get16(m, *pos + 2);
    uint32_t ttl = (static_cast<uint32_t>(Get16(m, *pos + 4)) << 16) | Get16(m, *pos + 6);
    uint16_t rdlen = Get16(m, *pos + 8);
    *pos += 10;
    if (*pos + rdlen > m.size()) {
      *detail = "record data runs past the end";
      return ParseError::kTruncated;
    }
    *pos += rdlen;
    if (type != static_cast<uint16_t>(RecordType::kOpt)) continue;
    if (!additional || !root || q->edns.has_value()) {
      *detail = !additional ? "OPT record outside the additional section"
                : !root     ? "OPT record with a non-root owner"
                            : "more than one OPT record";
      return ParseError::kBadEdns;
    }
    Edns e;
    e.udp_size = std::max<uint16_t>(klass, static_cast<uint16_t>(kMaxUdpSize));
    e.version = static_cast<uint8_t>((ttl >> 16) & 0xff);
    e.dnssec_ok = (ttl & 0x8000) != 0;
    q->edns = e;
  }
  return ParseError::kNone;
}

}  // namespace

// Appends `name` (dotted text) as labels; false if a label is empty or too long.
bool EncodeName(std::vector<uint8_t>& out, std::string_view name) {
  size_t start = out.size();
  size_t wire = 1;
  while (!name.empty()) {
    size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > kMaxLabelLength) {
      out.resize(start);
      return false;
    }
    wire += label.size() + 1;
    out.push_back(static_cast<uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
    name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  }
  out.push_back(0);
  if (wire > kMaxNameLength) {
    out.resize(start);
    return false;
  }
  return true;
}

namespace {

// The question's name as a pointer when the record names it (saves bytes).
bool EncodeOwner(std::vector<uint8_t>& out, std::string_view name, const Query& q) {
  if (name == q.name && q.plain_name) {
    Put16(out, 0xc000 | kHeaderSize);
    return true;
  }
  return EncodeName(out, name);
}

bool EncodeRecord(std::vector<uint8_t>& out, const Record& r, const Query& q) {
  size_t start = out.size();
  if (!EncodeOwner(out, r.name, q)) return false;
  Put16(out, r.type);
  Put16(out, kClassIn);
  Put32(out, r.ttl);
  size_t rdlen_at = out.size();
  Put16(out, 0);
  if (r.type == static_cast<uint16_t>(RecordType::kCname)) {
    if (!EncodeName(out, r.target)) {
      out.resize(start);
      return false;
    }
  } else {
    const auto& bytes = r.address.bytes();
    out.insert(out.end(), bytes.begin(), bytes.begin() + (r.address.is_v4() ? 4 : 16));
  }
  Set16(out, rdlen_at, static_cast<uint16_t>(out.size() - rdlen_at - 2));
  return true;
}

void PutHeader(std::vector<uint8_t>& out, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
               uint16_t ar) {
  Put16(out, id);
  Put16(out, flags);
  Put16(out, qd);
  Put16(out, an);
  Put16(out, 0);
  Put16(out, ar);
}

uint16_t ResponseFlags(const Query& q, Rcode rcode, bool aa) {
  uint16_t f = kFlagQr | kFlagRa | static_cast<uint16_t>((q.opcode & 0xf) << 11) |
               static_cast<uint16_t>(static_cast<uint8_t>(rcode) & 0xf);
  if (aa) f |= kFlagAa;
  if (q.recursion_desired) f |= kFlagRd;
  if (q.checking_disabled) f |= kFlagCd;
  return f;
}

void PutOpt(std::vector<uint8_t>& out, const Edns& e) {
  out.push_back(0);  // root owner
  Put16(out, static_cast<uint16_t>(RecordType::kOpt));
  Put16(out, e.udp_size);
  Put32(out, e.dnssec_ok ? 0x8000u : 0u);  // extended rcode 0, version 0
  Put16(out, 0);
}

}  // namespace

std::string_view ParseErrorName(ParseError e) {
  switch (e) {
    case ParseError::kNone: return "none";
    case ParseError::kTooShort: return "too_short";
    case ParseError::kNotQuery: return "not_query";
    case ParseError::kBadOpcode: return "bad_opcode";
    case ParseError::kQuestionCount: return "question_count";
    case ParseError::kBadName: return "bad_name";
    case ParseError::kTruncated: return "truncated";
    case ParseError::kBadEdns: return "bad_edns";
  }
  return "unknown";
}

size_t Query::UdpLimit() const { return edns ? std::max<size_t>(edns->udp_size, kMaxUdpSize) : kMaxUdpSize; }

Status ParsedQuery::status() const {
  if (ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      fmt::format("malformed DNS query ({}): {}", ParseErrorName(error), detail));
}

ParsedQuery ParseQuery(std::span<const uint8_t> m) {
  ParsedQuery r;
  auto fail = [&r](ParseError e, std::string detail) -> ParsedQuery {
    r.error = e;
    if (!detail.empty()) r.detail = std::move(detail);
    return std::move(r);
  };
  if (m.size() < kHeaderSize) {
    return fail(ParseError::kTooShort, fmt::format("{} bytes, a header needs 12", m.size()));
  }
  Query& q = r.query;
  q.id = Get16(m, 0);
  uint16_t flags = Get16(m, 2);
  q.opcode = static_cast<uint8_t>((flags >> 11) & 0xf);
  q.recursion_desired = (flags & kFlagRd) != 0;
  q.checking_disabled = (flags & kFlagCd) != 0;
  if ((flags & kFlagQr) != 0) return fail(ParseError::kNotQuery, "QR is set (a response)");
  if (q.opcode != 0) return fail(ParseError::kBadOpcode, fmt::format("opcode {}", q.opcode));
  uint16_t qd = Get16(m, 4), an = Get16(m, 6), ns = Get16(m, 8), ar = Get16(m, 10);
  if (qd != 1) return fail(ParseError::kQuestionCount, fmt::format("{} questions", qd));
  size_t pos = kHeaderSize;
  std::string detail;
  ParseError e = ReadQuestionName(m, &pos, &q, &detail);
  if (e != ParseError::kNone) return fail(e, detail);
  if (pos + 4 > m.size()) return fail(ParseError::kTruncated, "question type/class missing");
  q.qtype = Get16(m, pos);
  q.qclass = Get16(m, pos + 2);
  pos += 4;
  q.question_end = pos;
  e = ReadRecords(m, &pos, static_cast<size_t>(an) + ns, false, &q, &detail);
  if (e == ParseError::kNone) e = ReadRecords(m, &pos, ar, true, &q, &detail);
  if (e != ParseError::kNone) return fail(e, detail);
  return r;
}

std::string_view QueryTypeLabel(uint16_t qtype) {
  switch (static_cast<RecordType>(qtype)) {
    case RecordType::kA: return "a";
    case RecordType::kNs: return "ns";
    case RecordType::kCname: return "cname";
    case RecordType::kSoa: return "soa";
    case RecordType::kPtr: return "ptr";
    case RecordType::kMx: return "mx";
    case RecordType::kTxt: return "txt";
    case RecordType::kAaaa: return "aaaa";
    case RecordType::kSrv: return "srv";
    case RecordType::kOpt: return "opt";
    case RecordType::kHttps: return "https";
    case RecordType::kAny: return "any";
  }
  return "unknown";
}

std::vector<uint8_t> BuildAnswer(const Query& q, std::span<const uint8_t> raw,
                                 const std::vector<Record>& answers, const AnswerOptions& o) {
  std::vector<uint8_t> out;
  out.reserve(128);
  PutHeader(out, q.id, ResponseFlags(q, o.rcode, o.authoritative), 1, 0, q.edns ? 1 : 0);
  size_t qend = std::min(q.question_end, raw.size());
  if (qend > kHeaderSize) out.insert(out.end(), raw.begin() + kHeaderSize, raw.begin() + qend);
  const size_t records_at = out.size();
  uint16_t count = 0;
  for (const Record& r : answers) {
    if (EncodeRecord(out, r, q)) ++count;
  }
  Set16(out, 6, count);
  if (q.edns) PutOpt(out, *q.edns);
  if (out.size() > o.limit) {  // truncate: no records, TC, the client retries over TCP
    out.resize(records_at);
    Set16(out, 2, static_cast<uint16_t>(Get16(out, 2) | kFlagTc));
    Set16(out, 6, 0);
    if (q.edns) PutOpt(out, *q.edns);
  }
  return out;
}

std::vector<uint8_t> BuildError(const ParsedQuery& parsed, std::span<const uint8_t> raw, Rcode rcode) {
  std::vector<uint8_t> out;
  if (parsed.error == ParseError::kTooShort || raw.size() < kHeaderSize) return out;
  const Query& q = parsed.query;
  const bool question = q.question_end > kHeaderSize && q.question_end <= raw.size();
  PutHeader(out, q.id, ResponseFlags(q, rcode, false), question ? 1 : 0, 0, 0);
  if (question) out.insert(out.end(), raw.begin() + kHeaderSize, raw.begin() + q.question_end);
  return out;
}

std::optional<std::vector<uint8_t>> RelayAnswer(std::span<const uint8_t> a, uint16_t client_id,
                                                size_t limit) {
  if (a.size() < kHeaderSize) return std::nullopt;
  std::vector<uint8_t> out(a.begin(), a.end());
  Set16(out, 0, client_id);
  if (out.size() <= limit) return out;
  // Too big for the client's UDP size: keep header + question, set TC.
  size_t end = kHeaderSize;
  bool root = false;
  bool question = Get16(a, 4) == 1 && SkipName(a, &end, &root) && end + 4 <= a.size();
  out.resize(question ? end + 4 : kHeaderSize);
  Set16(out, 2, static_cast<uint16_t>(Get16(out, 2) | kFlagTc));
  Set16(out, 4, question ? 1 : 0);
  Set16(out, 6, 0);
  Set16(out, 8, 0);
  Set16(out, 10, 0);
  return out;
}

uint16_t MessageId(std::span<const uint8_t> m) { return m.size() < 2 ? 0 : Get16(m, 0); }
Rcode MessageRcode(std::span<const uint8_t> m) {
  return m.size() < 4 ? Rcode::kServFail : static_cast<Rcode>(m[3] & 0xf);
}
bool MessageTruncated(std::span<const uint8_t> m) { return m.size() >= 4 && (m[2] & 0x02) != 0; }

}  // namespace ambit::dns
