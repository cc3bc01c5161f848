// write_file_atomic (temp file + fsync + rename) and read_file, on POSIX file descriptors.
#include "nn/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/distributed.h"

namespace nanorlhf::nn {

namespace {

std::string sys_error(int err) { return std::strerror(err); }

// Directory holding `path`, so its entry (the rename) can be made durable too.
std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  if (path.empty()) throw std::invalid_argument("write_file_atomic: empty path");
  if (!dist::is_main()) return;  // data parallelism: rank 0 alone writes (every rank holds the same)
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string& what, int err, bool remove_tmp) {
    if (remove_tmp) ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write '" + path + "': " + what + " '" + tmp + "' failed: " + sys_error(err));
  };

  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    // Do not unlink here: whatever sits at `tmp` (a directory, another process' file) is not ours.
    fail("open", errno, false);
  }
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      fail("write to", err, true);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    fail("fsync of", err, true);
  }
  if (::close(fd) != 0) fail("close of", errno, true);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename of", errno, true);

  // Make the rename itself durable; failure here leaves a complete file, so it is not an error.
  int dfd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

std::string read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw std::runtime_error("cannot read '" + path + "': it is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "': " + sys_error(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read '" + path + "'");
  return std::move(ss).str();
}

}  // namespace nanorlhf::nn
