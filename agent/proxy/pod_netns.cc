#include "agent/proxy/pod_netns.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace ambit::agent {

std::string NetnsPathProblem(const std::string& path, const net::NetnsHandle& ns) {
  if (path.empty()) return "";
  std::string full = path.find('/') == std::string::npos ? "/var/run/netns/" + path : path;
  struct stat st {};
  if (::stat(full.c_str(), &st) != 0) return fmt::format("{}: {}", full, std::strerror(errno));
  if (static_cast<uint64_t>(st.st_dev) != ns.id().dev ||
      static_cast<uint64_t>(st.st_ino) != ns.id().ino) {
    return fmt::format("{} now names another network namespace", full);
  }
  return "";
}

}  // namespace ambit::agent
