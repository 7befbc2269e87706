// Serializers, reason phrases and header-list helpers of the HTTP/1.1 codec.
#include <fmt/format.h>

#include <algorithm>

#include "common/base/ascii.h"
#include "common/http1/codec.h"

namespace ambit::http1 {

namespace {

void AppendHeaders(std::string& out, const Headers& headers) {
  for (const auto& h : headers) {
    out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  out.append("\r\n");
}

bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

}  // namespace

std::optional<std::string_view> FindHeader(const Headers& h, std::string_view name) {
  for (const auto& x : h) {
    if (base::EqualsIgnoreCase(x.name, name)) return std::string_view(x.value);
  }
  return std::nullopt;
}

size_t RemoveHeader(Headers& h, std::string_view name) {
  return std::erase_if(h, [&](const Header& x) { return base::EqualsIgnoreCase(x.name, name); });
}

void SetHeader(Headers& h, std::string_view name, std::string_view value) {
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (base::EqualsIgnoreCase(it->name, name)) {
      it->value = std::string(value);
      h.erase(std::remove_if(std::next(it), h.end(),
                             [&](const Header& x) { return base::EqualsIgnoreCase(x.name, name); }),
              h.end());
      return;
    }
  }
  h.push_back({std::string(name), std::string(value)});
}

bool HeaderHasToken(const Headers& h, std::string_view name, std::string_view token) {
  for (const auto& x : h) {
    if (!base::EqualsIgnoreCase(x.name, name)) continue;
    for (std::string_view t : base::SplitCommaList(x.value)) {
      if (base::EqualsIgnoreCase(t, token)) return true;
    }
  }
  return false;
}

void AppendRequestHead(std::string& out, std::string_view method, std::string_view target,
                       const Headers& headers) {
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  AppendHeaders(out, headers);
}

void AppendResponseHead(std::string& out, int status, std::string_view reason,
                        const Headers& headers) {
  out.append(fmt::format("HTTP/1.1 {} ", status));
  out.append(reason.empty() ? ReasonPhrase(status) : reason).append("\r\n");
  AppendHeaders(out, headers);
}

void AppendChunk(std::string& out, std::span<const std::byte> data) {
  if (data.empty()) return;
  out.append(fmt::format("{:x}\r\n", data.size()));
  out.append(reinterpret_cast<const char*>(data.data()), data.size());
  out.append("\r\n");
}

void AppendLastChunk(std::string& out, const Headers& trailers) {
  out.append("0\r\n");
  AppendHeaders(out, trailers);
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
  }
}

bool IsValidHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!IsTchar(c)) return false;
  }
  return true;
}

bool IsValidHeaderValue(std::string_view value) {
  for (unsigned char c : value) {
    if (c == '\t') continue;
    if (c < 0x20 || c == 0x7f) return false;  // CTLs incl. CR, LF, NUL
  }
  return true;
}

}  // namespace ambit::http1
