#include "waypoint/kube/api_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

namespace ambit::waypoint::kube {

namespace {

constexpr size_t kMaxHeadBytes = 64 * 1024;

std::string OsslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

bool IsIp(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

// One connection: a socket, maybe TLS over it; reads wait with poll() so a
// timeout or an Interrupt (shutdown of the fd) ends them.
class Conn {
 public:
  explicit Conn(std::chrono::milliseconds read_timeout) : read_timeout_(read_timeout) {}
  ~Conn() {
    if (ssl_) SSL_shutdown(ssl_.get());
    ssl_.reset();
    ctx_.reset();
    if (fd_ >= 0) close(fd_);
  }
  int fd() const { return fd_; }

  // `on_fd` sees the socket as soon as it exists (so Interrupt can end a
  // connect or handshake in progress).
  Status Connect(const ApiServerOptions& o, const std::function<void(int)>& on_fd) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(o.port);
    if (int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
      return absl::UnavailableError(fmt::format("resolve {}: {}", o.host, gai_strerror(rc)));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
    fd_ = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return absl::UnavailableError(fmt::format("socket: {}", strerror(errno)));
    on_fd(fd_);
    if (connect(fd_, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
      return absl::UnavailableError(fmt::format("connect {}: {}", o.ToString(), strerror(errno)));
    }
    pollfd p{fd_, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(o.connect_timeout.count()));
    if (n <= 0) return absl::UnavailableError(fmt::format("connect {}: timed out", o.ToString()));
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return absl::UnavailableError(fmt::format("connect {}: {}", o.ToString(), strerror(err)));
    }
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    timeval tv{};
    tv.tv_sec = static_cast<long>(o.connect_timeout.count() / 1000);
    tv.tv_usec = static_cast<long>((o.connect_timeout.count() % 1000) * 1000);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (!o.tls) return absl::OkStatus();

    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) return absl::InternalError(OsslError());
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    if (o.ca_file.empty()) {
      SSL_CTX_set_default_verify_paths(ctx_.get());
    } else if (SSL_CTX_load_verify_locations(ctx_.get(), o.ca_file.c_str(), nullptr) != 1) {
      return absl::FailedPreconditionError(
          fmt::format("API server CA {}: {}", o.ca_file, OsslError()));
    }
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
    if (IsIp(o.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, o.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_.get(), o.host.c_str());
      X509_VERIFY_PARAM_set1_host(param, o.host.c_str(), 0);
    }
    timeval rt{};
    rt.tv_sec = static_cast<long>(o.connect_timeout.count() / 1000);
    rt.tv_usec = static_cast<long>((o.connect_timeout.count() % 1000) * 1000);
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt));
    if (SSL_connect(ssl_.get()) != 1) {
      const long vr = SSL_get_verify_result(ssl_.get());
      std::string why = vr != X509_V_OK ? X509_verify_cert_error_string(vr) : OsslError();
      return absl::UnavailableError(fmt::format("TLS to {}: {}", o.ToString(), why));
    }
    timeval none{};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    return absl::OkStatus();
  }

  Status WriteAll(std::string_view data) {
    while (!data.empty()) {
      long n = ssl_ ? SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()))
                    : send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return absl::UnavailableError("write to the API server failed");
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  // >0 bytes, 0 EOF; error on timeout/failure.
  StatusOr<size_t> Read(char* buf, size_t cap) {
    if (!ssl_ || SSL_pending(ssl_.get()) == 0) {
      pollfd p{fd_, POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(read_timeout_.count()));
      if (n == 0) return absl::DeadlineExceededError("API server read timed out");
      if (n < 0 && errno != EINTR) return absl::UnavailableError(strerror(errno));
    }
    if (ssl_) {
      int n = SSL_read(ssl_.get(), buf, static_cast<int>(cap));
      if (n > 0) return static_cast<size_t>(n);
      int e = SSL_get_error(ssl_.get(), n);
      if (e == SSL_ERROR_ZERO_RETURN) return size_t{0};
      if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return size_t{0};  // unclean close
      if (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return size_t{0};  // the server went away without close_notify
      }
      return absl::UnavailableError(fmt::format("TLS read: {}", OsslError()));
    }
    ssize_t n = recv(fd_, buf, cap, 0);
    if (n < 0) return absl::UnavailableError(fmt::format("read: {}", strerror(errno)));
    return static_cast<size_t>(n);
  }

 private:
  std::chrono::milliseconds read_timeout_;
  int fd_ = -1;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
};

// Buffered reads over a Conn.
class Reader {
 public:
  explicit Reader(Conn& c) : c_(c) {}
  Status Fill() {
    char tmp[16384];
    ASSIGN_OR_RETURN(size_t n, c_.Read(tmp, sizeof(tmp)));
    if (n == 0) return absl::UnavailableError("API server closed the connection");
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    buf_.append(tmp, n);
    return absl::OkStatus();
  }
  StatusOr<std::string> Line(size_t max) {
    for (;;) {
      size_t nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        std::string line = buf_.substr(pos_, nl - pos_);
        pos_ = nl + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (buf_.size() - pos_ > max) return absl::ResourceExhaustedError("HTTP line too long");
      RETURN_IF_ERROR(Fill());
    }
  }
  // Up to `n` bytes (at least 1) already buffered or read now; eof_ok: EOF -> "".
  StatusOr<std::string_view> Some(size_t n, bool eof_ok) {
    if (pos_ == buf_.size()) {
      Status st = Fill();
      if (!st.ok()) {
        if (eof_ok && absl::IsUnavailable(st)) return std::string_view();
        return st;
      }
    }
    std::string_view out(buf_.data() + pos_, std::min(n, buf_.size() - pos_));
    pos_ += out.size();
    return out;
  }

 private:
  Conn& c_;
  std::string buf_;
  size_t pos_ = 0;
};

StatusOr<std::string> ReadToken(const std::string& file) {
  if (file.empty()) return std::string();
  std::ifstream in(file);
  if (!in) return std::string();  // no token: anonymous (the server decides)
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = Trim(ss.str());
  if (token.find_first_of("\r\n") != std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("token file {} holds more than one line", file));
  }
  return token;
}

}  // namespace

void BlockSigpipeOnThisThread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

std::string ApiServerOptions::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return fmt::format("{}://{}{}{}:{}", tls ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "",
                     port);
}

StatusOr<ApiServerOptions> ParseApiServerUrl(std::string_view url) {
  ApiServerOptions o;
  if (url.starts_with("https://")) {
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
    o.tls = false;
    o.port = 80;
  }
  while (url.ends_with("/")) url.remove_suffix(1);
  std::string_view host = url, port;
  if (url.starts_with("[")) {
    size_t close = url.find(']');
    if (close == std::string_view::npos) return absl::InvalidArgumentError("bad IPv6 address");
    host = url.substr(1, close - 1);
    if (close + 1 < url.size() && url[close + 1] == ':') port = url.substr(close + 2);
  } else if (size_t colon = url.rfind(':'); colon != std::string_view::npos &&
                                            url.find(':') == colon) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty()) return absl::InvalidArgumentError(fmt::format("no host in {:?}", url));
  o.host = std::string(host);
  if (!port.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
      return absl::InvalidArgumentError(fmt::format("bad port in {:?}", url));
    }
    o.port = static_cast<uint16_t>(p);
  }
  return o;
}

void ApiClient::Interrupt() {
  interrupted_.store(true);
  std::lock_guard lock(mu_);
  if (active_fd_ >= 0) shutdown(active_fd_, SHUT_RDWR);
}

StatusOr<ApiResponse> ApiClient::Request(std::string_view method, std::string_view target,
                                         std::string_view content_type, std::string_view body,
                                         const BodyChunk& on_body, size_t max_body) {
  if (interrupted_.load()) return absl::CancelledError("stopped");
  Conn conn(options_.read_timeout);
  struct Clear {
    ApiClient* c;
    ~Clear() {
      std::lock_guard lock(c->mu_);
      c->active_fd_ = -1;
    }
  } clear{this};
  Status cst = conn.Connect(options_, [this](int fd) {
    std::lock_guard lock(mu_);
    active_fd_ = fd;
    if (interrupted_.load()) shutdown(fd, SHUT_RDWR);
  });
  if (interrupted_.load()) return absl::CancelledError("stopped");
  RETURN_IF_ERROR(cst);
  ASSIGN_OR_RETURN(std::string token, ReadToken(options_.token_file));
  std::string req = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ambit-waypoint\r\n"
                                "Accept: application/json\r\nConnection: close\r\n",
                                method, target, options_.host);
  if (!token.empty()) req += fmt::format("Authorization: Bearer {}\r\n", token);
  if (!body.empty() || method == "PATCH" || method == "POST" || method == "PUT") {
    req += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n", content_type, body.size());
  }
  req += "\r\n";
  req.append(body);
  RETURN_IF_ERROR(conn.WriteAll(req));

  Reader rd(conn);
  ApiResponse resp;
  ASSIGN_OR_RETURN(std::string status_line, rd.Line(kMaxHeadBytes));
  // "HTTP/1.1 200 OK"
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) {
    return absl::DataLossError(fmt::format("not an HTTP response: {:.64}", status_line));
  }
  {
    int code = 0;
    auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, code);
    if (ec != std::errc()) return absl::DataLossError("bad HTTP status line");
    resp.status = code;
  }
  bool chunked = false;
  std::optional<size_t> length;
  size_t head = status_line.size();
  for (;;) {
    ASSIGN_OR_RETURN(std::string line, rd.Line(kMaxHeadBytes));
    head += line.size();
    if (head > kMaxHeadBytes) return absl::DataLossError("HTTP response head too large");
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string name = Lower(line.substr(0, colon));
    const std::string value = Trim(line.substr(colon + 1));
    if (name == "transfer-encoding" && Lower(value).find("chunked") != std::string::npos) {
      chunked = true;
    } else if (name == "content-length") {
      size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc()) return absl::DataLossError("bad Content-Length");
      length = n;
    } else if (name == "content-type") {
      resp.content_type = value;
    }
  }
  const bool stream = on_body && resp.status >= 200 && resp.status < 300;
  bool stop = false;
  auto deliver = [&](std::string_view piece) -> Status {
    if (stream) {
      if (!on_body(piece)) stop = true;
      return absl::OkStatus();
    }
    if (resp.body.size() + piece.size() > max_body) {
      return absl::ResourceExhaustedError(
          fmt::format("API server response over {} bytes", max_body));
    }
    resp.body.append(piece);
    return absl::OkStatus();
  };
  if (chunked) {
    while (!stop) {
      ASSIGN_OR_RETURN(std::string size_line, rd.Line(1024));
      size_t n = 0;
      auto [p, ec] = std::from_chars(size_line.data(), size_line.data() + size_line.size(), n, 16);
      if (ec != std::errc()) return absl::DataLossError("bad chunk size");
      if (n == 0) break;
      while (n > 0 && !stop) {
        ASSIGN_OR_RETURN(std::string_view piece, rd.Some(n, false));
        n -= piece.size();
        RETURN_IF_ERROR(deliver(piece));
      }
      if (!stop) {
        ASSIGN_OR_RETURN(std::string crlf, rd.Line(16));
        (void)crlf;
      }
    }
  } else if (length) {
    size_t n = *length;
    while (n > 0 && !stop) {
      ASSIGN_OR_RETURN(std::string_view piece, rd.Some(n, false));
      n -= piece.size();
      RETURN_IF_ERROR(deliver(piece));
    }
  } else {
    while (!stop) {
      ASSIGN_OR_RETURN(std::string_view piece, rd.Some(1 << 20, true));
      if (piece.empty()) break;
      RETURN_IF_ERROR(deliver(piece));
    }
  }
  if (interrupted_.load()) return absl::CancelledError("stopped");
  return resp;
}

}  // namespace ambit::waypoint::kube
