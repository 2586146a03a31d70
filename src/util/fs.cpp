#include "util/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "hubcache/error.hpp"

namespace hubcache::util {

std::string random_hex8() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<std::uint64_t>(::getpid()) << 32)};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t v = rng();
  std::string out(8, '0');
  for (int i = 0; i < 8; ++i) out[i] = kHex[(v >> (i * 4)) & 15];
  return out;
}

void throw_errno(int err, const std::string& what) {
  if (err == ENOSPC || err == EDQUOT)
    throw Error(ErrorCode::disk_full, what +
                                          ": no space left on device. Free some space, or point HF_HUB_CACHE "
                                          "at another disk.");
  std::string hint;
  if (err == EROFS)
    hint =
        ". A read-only cache still serves the files it has (set HF_HUB_OFFLINE=1 to use it without the Hub); "
        "to add files, point HF_HUB_CACHE at a writable folder";
  else if (err == EACCES || err == EPERM)
    hint = ". Check the permissions of the cache folder (HF_HUB_CACHE), or use one you can write";
  throw Error(ErrorCode::io, what + ": " + std::strerror(err) + hint + ".");
}

std::optional<std::string> read_small_file(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) {
        ::close(fd);
        return std::nullopt;
      }
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > (1u << 24)) break;
  }
  ::close(fd);
  return out;
}

void make_dirs(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw_errno(ec.value(), "Cannot create directory " + dir.string());
}

void fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void atomic_write(const std::filesystem::path& file, std::string_view content) {
  auto tmp = file;
  tmp += "." + random_hex8() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw_errno(errno, "Cannot write " + file.string());
  const char* p = content.data();
  std::size_t left = content.size();
  while (left) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw_errno(err, "Cannot write " + file.string());
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw_errno(err, "Cannot write " + file.string());
  }
  ::close(fd);
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw_errno(err, "Cannot write " + file.string());
  }
}

void copy_file_atomically(const std::filesystem::path& from, const std::filesystem::path& to) {
  auto tmp = to;
  tmp += "." + random_hex8() + ".tmp";
  std::error_code ec;
  std::filesystem::copy_file(from, tmp, std::filesystem::copy_options::overwrite_existing, ec);
  int err = ec ? ec.value() : 0;
  if (!err) {
    int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      err = errno;
    } else {
      if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) err = errno;
      ::close(fd);
    }
  }
  if (!err && ::rename(tmp.c_str(), to.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    throw_errno(err, "Cannot copy " + from.string() + " to " + to.string());
  }
}

bool is_regular_file(const std::filesystem::path& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace hubcache::util
