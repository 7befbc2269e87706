#include "common/admin/http1.h"

#include <fmt/format.h>

#include <cctype>

namespace ambit::admin {

namespace {

Http1RequestParser* Self(llhttp_t* p) { return static_cast<Http1RequestParser*>(p->data); }

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

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string FormatResponse(const HttpResponse& r, bool keep_alive) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
                                r.status, ReasonPhrase(r.status), r.content_type, r.body.size());
  for (const auto& [k, v] : r.headers) out += fmt::format("{}: {}\r\n", k, v);
  if (!keep_alive) out += "connection: close\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

Http1RequestParser::Http1RequestParser() {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &OnMessageBegin;
  settings_.on_url = &OnUrl;
  settings_.on_header_field = &OnHeaderField;
  settings_.on_header_value = &OnHeaderValue;
  settings_.on_headers_complete = &OnHeadersComplete;
  settings_.on_body = &OnBody;
  settings_.on_message_complete = &OnMessageComplete;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
}

Status Http1RequestParser::Feed(std::string_view data) {
  llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
  if (too_large_) return absl::ResourceExhaustedError("HTTP request too large");
  if (err != HPE_OK) {
    return absl::InvalidArgumentError(
        fmt::format("malformed HTTP/1.1 request: {} ({})", llhttp_errno_name(err),
                    llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : ""));
  }
  return absl::OkStatus();
}

HttpRequest Http1RequestParser::TakeRequest() {
  HttpRequest r = std::move(ready_.front());
  ready_.pop_front();
  return r;
}

int Http1RequestParser::OnMessageBegin(llhttp_t* p) {
  auto* self = Self(p);
  self->current_ = HttpRequest{};
  self->field_.clear();
  self->in_value_ = false;
  self->head_bytes_ = 0;
  return 0;
}

int Http1RequestParser::OnUrl(llhttp_t* p, const char* at, size_t len) {
  auto* self = Self(p);
  self->head_bytes_ += len;
  if (self->head_bytes_ > kMaxHeadBytes) {
    self->too_large_ = true;
    return -1;
  }
  self->current_.target.append(at, len);
  return 0;
}

int Http1RequestParser::OnHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* self = Self(p);
  self->head_bytes_ += len;
  if (self->head_bytes_ > kMaxHeadBytes) {
    self->too_large_ = true;
    return -1;
  }
  if (self->in_value_) {
    self->field_.clear();
    self->in_value_ = false;
  }
  for (size_t i = 0; i < len; ++i) {
    self->field_.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
  }
  return 0;
}

int Http1RequestParser::OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* self = Self(p);
  self->head_bytes_ += len;
  if (self->head_bytes_ > kMaxHeadBytes) {
    self->too_large_ = true;
    return -1;
  }
  if (!self->in_value_) {
    self->current_.headers.emplace_back(self->field_, std::string());
    self->in_value_ = true;
  }
  self->current_.headers.back().second.append(at, len);
  return 0;
}

int Http1RequestParser::OnHeadersComplete(llhttp_t* p) {
  auto* self = Self(p);
  auto& r = self->current_;
  r.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
  size_t q = r.target.find('?');
  r.path = r.target.substr(0, q);
  r.query = q == std::string::npos ? "" : r.target.substr(q + 1);
  r.keep_alive = llhttp_should_keep_alive(p) != 0;
  return 0;
}

int Http1RequestParser::OnBody(llhttp_t* p, const char* at, size_t len) {
  auto* self = Self(p);
  if (self->current_.body.size() + len > kMaxBodyBytes) {
    self->too_large_ = true;
    return -1;
  }
  self->current_.body.append(at, len);
  return 0;
}

int Http1RequestParser::OnMessageComplete(llhttp_t* p) {
  auto* self = Self(p);
  self->current_.keep_alive = llhttp_should_keep_alive(p) != 0;
  self->ready_.push_back(std::move(self->current_));
  self->current_ = HttpRequest{};
  return 0;
}

}  // namespace ambit::admin
