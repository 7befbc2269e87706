#include "common/admin/http1.h"

#include <fmt/format.h>

#include <cctype>

#include "common/base/ascii.h"

namespace ambit::admin {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Calls fn(key, value) for each k=v pair of a query string.
template <typename Fn>
void ForEachParam(std::string_view query, Fn fn) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    std::string_view item = query.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key = PercentDecode(item.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : PercentDecode(item.substr(eq + 1));
    if (fn(key, value)) return;
  }
}

}  // namespace

std::string_view HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

std::string HttpRequest::QueryParam(std::string_view key) const {
  std::string found;
  ForEachParam(query, [&](const std::string& k, const std::string& v) {
    if (k != key) return false;
    found = v;
    return true;
  });
  return found;
}

bool HttpRequest::HasQueryParam(std::string_view key) const {
  bool found = false;
  ForEachParam(query, [&](const std::string& k, const std::string&) {
    found = k == key;
    return found;
  });
  return found;
}

std::string_view ReasonPhrase(int status) { return http1::ReasonPhrase(status); }

std::string FormatResponse(const HttpResponse& r, bool keep_alive) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
                                r.status, ReasonPhrase(r.status), r.content_type, r.body.size());
  for (const auto& [k, v] : r.headers) out += fmt::format("{}: {}\r\n", k, v);
  if (!keep_alive) out += "connection: close\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

Http1RequestParser::Http1RequestParser() = default;

Status Http1RequestParser::Feed(std::string_view data) {
  using Event = http1::Parser::Event;
  if (!error_.ok()) return error_;
  for (;;) {
    http1::Parser::Result r = parser_.Next(data);
    data.remove_prefix(r.consumed);
    switch (r.event) {
      case Event::kHead: {
        http1::RequestHead head = parser_.TakeRequest();
        current_ = HttpRequest{};
        current_.method = std::move(head.method);
        current_.target = std::move(head.target);
        size_t q = current_.target.find('?');
        current_.path = current_.target.substr(0, q);
        current_.query = q == std::string::npos ? "" : current_.target.substr(q + 1);
        current_.keep_alive = head.keep_alive;
        for (auto& h : head.headers) {
          current_.headers.emplace_back(base::ToLower(h.name), std::move(h.value));
        }
        if (head.framing == http1::Framing::kContentLength &&
            head.content_length > kMaxBodyBytes) {
          return error_ = absl::ResourceExhaustedError("HTTP request too large");
        }
        break;
      }
      case Event::kBody:
        if (current_.body.size() + r.body.size() > kMaxBodyBytes) {
          return error_ = absl::ResourceExhaustedError("HTTP request too large");
        }
        current_.body.append(reinterpret_cast<const char*>(r.body.data()), r.body.size());
        break;
      case Event::kTrailers:
        (void)parser_.TakeTrailers();  // no admin endpoint reads trailers
        break;
      case Event::kComplete:
        ready_.push_back(std::move(current_));
        current_ = HttpRequest{};
        break;
      case Event::kUpgrade:
        return error_ = absl::InvalidArgumentError("malformed HTTP/1.1 request: upgrades are not served");
      case Event::kError: {
        const http1::ParseError e = parser_.error();
        if (e == http1::ParseError::kHeadTooLarge || e == http1::ParseError::kTooManyHeaders) {
          return error_ = absl::ResourceExhaustedError("HTTP request too large");
        }
        return error_ = absl::InvalidArgumentError(
                   fmt::format("malformed HTTP/1.1 request: {}", http1::ParseErrorName(e)));
      }
      case Event::kNeedMore:
        return absl::OkStatus();
    }
  }
}

HttpRequest Http1RequestParser::TakeRequest() {
  HttpRequest r = std::move(ready_.front());
  ready_.pop_front();
  return r;
}

}  // namespace ambit::admin
