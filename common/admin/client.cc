#include "common/admin/client.h"

#include "common/base/ascii.h"
#include "common/http1/codec.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/net/address.h"
#include "common/net/fd.h"

namespace ambit::admin {

namespace {

// "Connection refused" -> "connection refused" (reads well after a colon).
std::string ErrnoText(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

Status Unavailable(std::string_view what, int err) {
  return absl::UnavailableError(fmt::format("{}: {}", what, ErrnoText(err)));
}

StatusOr<net::SocketAddress> Resolve(const HttpUrl& url) {
  if (auto ip = net::IpAddress::Parse(url.host); ip.ok()) return net::SocketAddress(*ip, url.port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(url.host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    return absl::UnavailableError(
        fmt::format("cannot resolve host '{}': {}", url.host, ::gai_strerror(rc)));
  }
  auto sa = net::SocketAddress::FromSockaddr(res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  if (!sa.ok()) return sa.status();
  return net::SocketAddress(sa->ip(), url.port);
}

StatusOr<net::Fd> Connect(const net::SocketAddress& to, std::chrono::milliseconds timeout) {
  sockaddr_storage ss{};
  socklen_t len = to.ToSockaddr(&ss);
  net::Fd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Unavailable("socket", errno);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    return Unavailable(fmt::format("connect {}", to.ToString()), errno);
  }
  pollfd p{fd.get(), POLLOUT, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n == 0) {
    return absl::DeadlineExceededError(
        fmt::format("connect {}: timed out after {} ms", to.ToString(), timeout.count()));
  }
  int err = 0;
  socklen_t elen = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
  if (n < 0 || err != 0) {
    return Unavailable(fmt::format("connect {}", to.ToString()), n < 0 ? errno : err);
  }
  return fd;
}

// Waits for `events` on fd; errors on timeout.
Status WaitFor(int fd, short events, std::chrono::milliseconds timeout, std::string_view what) {
  pollfd p{fd, events, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n == 0) {
    return absl::DeadlineExceededError(
        fmt::format("{}: no progress for {} ms", what, timeout.count()));
  }
  if (n < 0) return Unavailable(what, errno);
  return absl::OkStatus();
}

Status SendAllBlocking(int fd, std::string_view data, std::chrono::milliseconds timeout) {
  while (!data.empty()) {
    RETURN_IF_ERROR(WaitFor(fd, POLLOUT, timeout, "sending the request"));
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return Unavailable("sending the request", errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// One response, on the shared HTTP/1.1 codec (interim 1xx skipped).
class ResponseParser {
 public:
  explicit ResponseParser(size_t max_bytes) : max_(max_bytes) {}

  Status Feed(std::string_view data) {
    using Event = http1::Parser::Event;
    while (!done_) {
      http1::Parser::Result r = parser_.Next(data);
      data.remove_prefix(r.consumed);
      switch (r.event) {
        case Event::kHead: {
          http1::ResponseHead head = parser_.TakeResponse();
          interim_ = head.status >= 100 && head.status < 200 && !head.upgrade;
          if (interim_) break;
          out_.status = head.status;
          for (auto& h : head.headers) {
            out_.headers.emplace_back(base::ToLower(h.name), std::move(h.value));
          }
          break;
        }
        case Event::kBody:
          if (out_.body.size() + r.body.size() > max_) {
            return absl::ResourceExhaustedError(
                fmt::format("response larger than {} bytes", max_));
          }
          out_.body.append(reinterpret_cast<const char*>(r.body.data()), r.body.size());
          break;
        case Event::kTrailers:
          (void)parser_.TakeTrailers();
          break;
        case Event::kComplete:
        case Event::kUpgrade:
          if (!interim_) done_ = true;
          interim_ = false;
          break;
        case Event::kError:
          return absl::DataLossError(fmt::format("malformed HTTP response: {}",
                                                 http1::ParseErrorName(parser_.error())));
        case Event::kNeedMore:
          return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }
  // At EOF: a body delimited by the close completes here.
  Status Finish() {
    if (!done_) {
      http1::Parser::Result r = parser_.Finish();
      if (r.event == http1::Parser::Event::kComplete && !interim_) done_ = true;
      if (r.event == http1::Parser::Event::kError) {
        return absl::DataLossError("connection closed before the response was complete");
      }
    }
    if (!done_) return absl::DataLossError("connection closed before a response arrived");
    return absl::OkStatus();
  }
  bool done() const { return done_; }
  ClientResponse Take() { return std::move(out_); }

 private:
  size_t max_;
  http1::Parser parser_{http1::Kind::kResponse};
  ClientResponse out_;
  bool interim_ = false;
  bool done_ = false;
};

std::string FormatRequest(const HttpUrl& url, const ClientRequest& r) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  std::string out = fmt::format("{} {}{} HTTP/1.1\r\nhost: {}:{}\r\nconnection: close\r\n",
                                r.method, url.path, r.target, host, url.port);
  for (const auto& [k, v] : r.headers) out += fmt::format("{}: {}\r\n", k, v);
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT") {
    out += fmt::format("content-length: {}\r\n", r.body.size());
  }
  out += "\r\n";
  out += r.body;
  return out;
}

}  // namespace

std::string HttpUrl::ToString() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return fmt::format("http://{}:{}{}", h, port, path);
}

StatusOr<HttpUrl> ParseHttpUrl(std::string_view url) {
  const std::string original(url);
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(fmt::format(
        "bad URL '{}': {} (expected http://HOST:PORT, e.g. http://127.0.0.1:15000)", original,
        why));
  };
  if (url.starts_with("https://")) return bad("https is not supported by the admin API");
  if (url.starts_with("http://")) url.remove_prefix(7);
  HttpUrl out;
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) out.path = std::string(url.substr(slash));
  while (!out.path.empty() && out.path.back() == '/') out.path.pop_back();
  std::string_view port_text;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated [IPv6] host");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(":")) return bad("junk after ]");
    if (!rest.empty()) port_text = rest.substr(1);
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("missing host");
  if (!port_text.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || v == 0 || v > 65535) {
      return bad("port must be 1..65535");
    }
    out.port = static_cast<uint16_t>(v);
  }
  return out;
}

std::string_view ClientResponse::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return v;
  }
  return {};
}

StatusOr<ClientResponse> Fetch(const HttpUrl& url, const ClientRequest& request) {
  ASSIGN_OR_RETURN(net::SocketAddress to, Resolve(url));
  ASSIGN_OR_RETURN(net::Fd fd, Connect(to, request.timeout));
  RETURN_IF_ERROR(SendAllBlocking(fd.get(), FormatRequest(url, request), request.timeout));
  ResponseParser parser(request.max_response_bytes);
  char buf[16 * 1024];
  while (!parser.done()) {
    RETURN_IF_ERROR(WaitFor(fd.get(), POLLIN, request.timeout, "waiting for the response"));
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) return Unavailable("reading the response", errno);
    if (n == 0) {
      RETURN_IF_ERROR(parser.Finish());
      break;
    }
    RETURN_IF_ERROR(parser.Feed(std::string_view(buf, static_cast<size_t>(n))));
  }
  return parser.Take();
}

}  // namespace ambit::admin
