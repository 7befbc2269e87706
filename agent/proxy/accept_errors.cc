#include "agent/proxy/accept_errors.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>

#include "common/base/log.h"

namespace ambit::agent {

namespace {

constexpr auto kReportEvery = std::chrono::seconds(5);

struct Families {
  metrics::CounterFamily* errors;
  metrics::CounterFamily* shed;
};

// Every worker shares one family per registry (the registry does not merge
// families registered twice under one name).
Families FamiliesFor(metrics::Registry& registry) {
  static std::mutex mu;
  static std::map<metrics::Registry*, Families> families;
  std::lock_guard lock(mu);
  auto it = families.find(&registry);
  if (it != families.end()) return it->second;
  Families f{&registry.AddCounter("ambit_accept_errors",
                                  "Failed accepts on in-pod listeners by reason (emfile: the "
                                  "agent's RLIMIT_NOFILE is exhausted)",
                                  {"reason"}),
             &registry.AddCounter("ambit_accept_shed",
                                  "Connections accepted and reset at once because the agent "
                                  "was out of file descriptors")};
  families.emplace(&registry, f);
  return f;
}

int OpenReserve() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

AcceptErrors::AcceptErrors(metrics::Registry& registry, size_t shard) {
  Families f = FamiliesFor(registry);
  emfile_ = f.errors->Get(shard, {"emfile"});
  enfile_ = f.errors->Get(shard, {"enfile"});
  nomem_ = f.errors->Get(shard, {"nomem"});
  other_ = f.errors->Get(shard, {"other"});
  shed_counter_ = f.shed->Get(shard, {});
  reserve_ = OpenReserve();
}

AcceptErrors::~AcceptErrors() {
  if (reserve_ >= 0) ::close(reserve_);
}

const char* AcceptErrors::Reason(const Status& error) {
  if (!absl::IsResourceExhausted(error)) return "other";
  const std::string msg(error.message());
  if (msg.find("in system") != std::string::npos) return "enfile";
  if (msg.find("Too many open files") != std::string::npos) return "emfile";
  return "nomem";
}

bool AcceptErrors::OnError(int listen_fd, const std::string& uid, const Status& error,
                           base::MonoTime now) {
  const std::string reason = Reason(error);
  metrics::Counter* c = reason == "emfile"   ? emfile_
                        : reason == "enfile" ? enfile_
                        : reason == "nomem"  ? nomem_
                                             : other_;
  c->Inc();
  ++unreported_;
  bool shed = false;
  if (reason == "emfile" || reason == "enfile") shed = ShedOne(listen_fd);
  Report(uid, error, now);
  return !shed;
}

bool AcceptErrors::ShedOne(int listen_fd) {
  if (reserve_ < 0) {
    reserve_ = OpenReserve();  // maybe fds were freed meanwhile
    return false;
  }
  ::close(reserve_);
  reserve_ = -1;
  int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) {
    linger l{1, 0};  // reset: the client learns at once that it was refused
    (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::close(fd);
  }
  reserve_ = OpenReserve();
  if (fd < 0) return false;
  ++shed_;
  ++unreported_shed_;
  shed_counter_->Inc();
  return true;
}

void AcceptErrors::Report(const std::string& uid, const Status& error, base::MonoTime now) {
  if (reported_once_ && now - last_report_ < kReportEvery) return;
  AMBIT_LOG(kWarn, "capture",
            "accept on pod {} failed: {} ({} failure(s), {} connection(s) reset since the last "
            "report); if this is 'Too many open files', raise the agent's RLIMIT_NOFILE",
            uid, error.ToString(), unreported_, unreported_shed_);
  reported_once_ = true;
  last_report_ = now;
  unreported_ = 0;
  unreported_shed_ = 0;
}

}  // namespace ambit::agent
