// DNS message codec (RFC 1035, EDNS0 of RFC 6891) for the 15053 proxy.
// Sans-I/O: byte spans in, bytes out. It reads exactly what the proxy needs
// from a query (header, the one question, the OPT record) and writes the
// answers the proxy makes itself (A/AAAA/CNAME, errors, truncation); answers
// from upstream are relayed as bytes and never decoded. Every input is
// untrusted: malformed messages come back as a typed error (reason +
// Status), never an assertion. Fuzzed by tests/fuzz/fuzz_dns_message.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/net/address.h"

namespace ambit::dns {

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxUdpSize = 512;         // without EDNS (RFC 1035 §4.2.1)
inline constexpr size_t kMaxMessageSize = 65535;   // TCP length prefix
inline constexpr uint32_t kLocalTtl = 30;          // ztunnel's TTL for mesh names

enum class RecordType : uint16_t {
  kA = 1, kNs = 2, kCname = 5, kSoa = 6, kPtr = 12, kMx = 15, kTxt = 16, kAaaa = 28,
  kSrv = 33, kOpt = 41, kHttps = 65, kAny = 255,
};
inline constexpr uint16_t kClassIn = 1;

enum class Rcode : uint8_t {
  kNoError = 0, kFormErr = 1, kServFail = 2, kNxDomain = 3, kNotImp = 4, kRefused = 5,
};

// Why a query could not be used. kNone = parsed.
enum class ParseError : uint8_t {
  kNone,
  kTooShort,        // fewer than 12 bytes: not even a header (dropped, no reply possible)
  kNotQuery,        // QR bit set: a response sent to us
  kBadOpcode,       // opcode other than QUERY (answered NOTIMP)
  kQuestionCount,   // QDCOUNT != 1
  kBadName,         // label too long, name > 255 bytes, compression in the question
  kTruncated,       // a section runs past the end of the message
  kBadEdns,         // malformed or duplicate OPT record
};
std::string_view ParseErrorName(ParseError e);  // metric label: too_short, not_query, ...

struct Edns {
  uint16_t udp_size = kMaxUdpSize;  // requestor's payload size (< 512 read as 512)
  uint8_t version = 0;
  bool dnssec_ok = false;
};

struct Query {
  uint16_t id = 0;
  uint8_t opcode = 0;
  bool recursion_desired = false;
  bool checking_disabled = false;
  // The question name as text: lower-case, labels joined by '.', no trailing
  // dot ("" = the root). `plain_name` is false when a label holds a byte
  // other than [a-z0-9-_*] (such names are never served from the mesh).
  std::string name;
  bool plain_name = true;
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  std::optional<Edns> edns;
  size_t question_end = 0;  // offset just past the question in the raw message

  // Largest answer the client accepts over UDP.
  size_t UdpLimit() const;
};

// A parse result with a typed reason. On error, `query` holds what the
// header gave (id, opcode, rd) so a FORMERR/NOTIMP answer can be built when
// error != kTooShort.
struct ParsedQuery {
  Query query;
  ParseError error = ParseError::kNone;
  std::string detail;  // for the log: what exactly was wrong
  bool ok() const { return error == ParseError::kNone; }
  Status status() const;
};

ParsedQuery ParseQuery(std::span<const uint8_t> msg);

// Lower-case text of a record type for the metric label request_query_type
// ("a", "aaaa", "srv", ...; "unknown" for types without a name).
std::string_view QueryTypeLabel(uint16_t qtype);

// One record the proxy writes into an answer.
struct Record {
  std::string name;   // dotted text, no trailing dot
  uint16_t type = 0;  // kA, kAaaa or kCname
  uint32_t ttl = kLocalTtl;
  net::IpAddress address;  // A / AAAA
  std::string target;      // CNAME
};

struct AnswerOptions {
  Rcode rcode = Rcode::kNoError;
  bool authoritative = false;
  size_t limit = kMaxMessageSize;  // over this the answer is truncated (TC, no records)
};

// An answer to `query` (its raw bytes `raw` supply the question section):
// header (id, opcode, RD, CD copied; RA set), the question, `answers`, and an
// OPT record when the query had one. Records that do not fit `limit` are all
// dropped and TC is set, so the client retries over TCP.
std::vector<uint8_t> BuildAnswer(const Query& query, std::span<const uint8_t> raw,
                                 const std::vector<Record>& answers, const AnswerOptions& options);

// An error answer (FORMERR, NOTIMP, SERVFAIL) to a message whose header at
// least parsed. The question is echoed when the query got that far.
std::vector<uint8_t> BuildError(const ParsedQuery& parsed, std::span<const uint8_t> raw, Rcode rcode);

// An upstream answer relayed to the client: `answer` with the client's id.
// If it exceeds `limit` (a UDP client's size), it becomes header + question
// with TC set. Returns nullopt when `answer` is not even a header.
std::optional<std::vector<uint8_t>> RelayAnswer(std::span<const uint8_t> answer, uint16_t client_id,
                                                size_t limit);

// Header fields of any message (tests, the log).
// Wire helpers shared with the on-demand lookup codec (address_lookup.h).
// SkipName: skips a name anywhere in a message (compression pointers allowed);
// false when it runs past the end; `root` = the name is the root.
bool SkipName(std::span<const uint8_t> m, size_t* pos, bool* root);
// EncodeName: appends dotted `name` as labels; false if a label is empty or
// longer than 63 bytes, or the name longer than 255.
bool EncodeName(std::vector<uint8_t>& out, std::string_view name);

uint16_t MessageId(std::span<const uint8_t> msg);
Rcode MessageRcode(std::span<const uint8_t> msg);
bool MessageTruncated(std::span<const uint8_t> msg);

}  // namespace ambit::dns
