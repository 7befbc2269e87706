#include "agent/capture/netns_exec.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/net/cat.h"
#include "common/net/fd.h"
#include "common/net/socket.h"

namespace ambit::capture {
namespace {

using net::Cat;
using net::ErrnoError;
using net::Fd;

struct Pipe {
  Fd read;
  Fd write;
};

StatusOr<Pipe> MakePipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe2");
  return Pipe{Fd(p[0]), Fd(p[1])};
}

[[noreturn]] void ChildExec(int ns_fd, int in, int out, int err, char* const* argv) {
  if (ns_fd >= 0 && ::setns(ns_fd, CLONE_NEWNET) != 0) {
    const char msg[] = "setns failed\n";
    (void)!::write(err, msg, sizeof(msg) - 1);
    ::_exit(126);
  }
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(err, 2);
  ::execv(argv[0], argv);
  ::_exit(127);
}

// Feeds `input` and drains stdout/stderr without deadlocking on full pipes.
void Pump(Fd& in, Fd& out, Fd& err, std::string_view input, ExecResult& r) {
  size_t written = 0;
  if (input.empty()) in.Reset();
  char buf[4096];
  while (out.valid() || err.valid()) {
    pollfd p[3] = {{in.get(), POLLOUT, 0}, {out.get(), POLLIN, 0}, {err.get(), POLLIN, 0}};
    if (::poll(p, 3, 30000) <= 0) break;  // a rule tool hung for 30 s: give up
    if (in.valid() && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(in.get(), input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      bool again = n < 0 && (errno == EAGAIN || errno == EINTR);
      if ((n <= 0 && !again) || written == input.size()) in.Reset();
    }
    for (int i = 1; i < 3; ++i) {
      Fd& f = i == 1 ? out : err;
      if (!f.valid() || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(f.get(), buf, sizeof(buf));
      if (n <= 0) {
        f.Reset();
      } else {
        (i == 1 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
}

}  // namespace

StatusOr<std::string> FindProgram(std::string_view name, std::string_view package) {
  std::string path = "/usr/sbin:/sbin:/usr/bin:/bin";
  if (const char* env = std::getenv("PATH")) path = std::string(env) + ":" + path;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string candidate = Cat(path.substr(start, end - start), "/", name);
    if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return absl::NotFoundError(
      Cat(name, " not found in PATH, /usr/sbin or /sbin: install the '", package, "' package"));
}

StatusOr<ExecResult> ExecInNetns(const net::NetnsHandle* ns, const std::vector<std::string>& argv,
                                 std::string_view input) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  ASSIGN_OR_RETURN(Pipe in, MakePipe());
  // Non-blocking so a large input never blocks while the child's output
  // pipe is full (poll tells us when to write more).
  RETURN_IF_ERROR(net::SetNonBlocking(in.write.get(), true));
  ASSIGN_OR_RETURN(Pipe out, MakePipe());
  ASSIGN_OR_RETURN(Pipe err, MakePipe());
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError(errno, "fork");
  if (pid == 0) {
    ChildExec(ns ? ns->fd() : -1, in.read.get(), out.write.get(), err.write.get(), cargv.data());
  }
  in.read.Reset();
  out.write.Reset();
  err.write.Reset();
  ExecResult r;
  // A child that exits early must not kill us with SIGPIPE.
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  Pump(in.write, out.read, err.read, input, r);
  ::sigaction(SIGPIPE, &old, nullptr);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (r.exit_code == 126 && r.err == "setns failed\n") {
    return absl::PermissionDeniedError(
        Cat("cannot enter netns ", ns ? ns->description() : "", " (needs CAP_SYS_ADMIN)"));
  }
  if (r.exit_code == 127) return absl::NotFoundError(Cat("cannot execute ", argv[0]));
  return r;
}

}  // namespace ambit::capture
