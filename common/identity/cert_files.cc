#include "common/identity/cert_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/identity/cat.h"

namespace ambit::identity {
namespace {

Status ErrnoError(std::string_view what, const std::filesystem::path& p) {
  return absl::InternalError(Cat(what, " ", p.string(), ": ", std::strerror(errno)));
}

Status WriteAll(int fd, std::string_view data, const std::filesystem::path& p) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError("writing", p);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

Status WriteFileAtomic(const std::filesystem::path& path, std::string_view contents,
                       unsigned mode) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("creating", tmp);
  Status st = ::fchmod(fd, mode) == 0 ? WriteAll(fd, contents, tmp) : ErrnoError("chmod", tmp);
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoError("fsync", tmp);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoError("renaming to", path);
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

StatusOr<std::string> ReadSmallFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(Cat("cannot read ", path.string(), ": ", std::strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteBundleToDir(const CertBundle& bundle, const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(Cat("creating directory ", dir.string(), ": ", ec.message()));
  }
  RETURN_IF_ERROR(WriteFileAtomic(dir / kKeyFile, bundle.private_key_pem, 0600));
  RETURN_IF_ERROR(WriteFileAtomic(dir / kCertChainFile, bundle.CertChainPem(), 0644));
  return WriteFileAtomic(dir / kRootCertFile, bundle.root_pem, 0644);
}

StatusOr<CertBundle> ReadBundleFromDir(const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(std::string key, ReadSmallFile(dir / kKeyFile));
  ASSIGN_OR_RETURN(std::string chain, ReadSmallFile(dir / kCertChainFile));
  ASSIGN_OR_RETURN(std::string root, ReadSmallFile(dir / kRootCertFile));
  return MakeCertBundle(chain, root, key);
}

}  // namespace ambit::identity
