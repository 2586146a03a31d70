// An LD_PRELOAD library that makes file-system calls fail (or do nothing) on demand,
// so tests can show what the real CLI does on a full disk, a failing disk, a
// read-only cache, a file system without symlinks or without working locks,
// on machines where the test cannot mount a real one. It is loaded only into
// the processes a test starts, and it does nothing unless told to by these
// variables (read once, at load):
//
//   HUBCACHE_FSFAULT_WRITE=ERRNO[:N][@SUB]   write, pwrite, writev, pwritev and
//       fallocate on regular files whose path contains SUB fail with ERRNO once N
//       bytes (default 0) have been written to such files; the write that crosses
//       N is cut short there, as a real full disk does.
//   HUBCACHE_FSFAULT_FSYNC=ERRNO[:N][@SUB]   fsync / fdatasync fail (after N successes).
//   HUBCACHE_FSFAULT_RENAME=ERRNO[:N][@SUB]  rename / renameat / renameat2 fail when
//       either path contains SUB (after N successes).
//   HUBCACHE_FSFAULT_SYMLINK=ERRNO[:N][@SUB] symlink / symlinkat fail.
//   HUBCACHE_FSFAULT_FLOCK=noop              flock and fcntl record locks succeed
//       without locking anything (Lustre, GPFS, some NFS mounts).
//   HUBCACHE_FSFAULT_ROFS=PREFIX             every call that would change something
//       under PREFIX fails with EROFS: a read-only mount, even for root.
//
// ERRNO is a name (ENOSPC, EIO, EPERM, EDQUOT, EROFS, EACCES) or a number.
// Each injected failure is counted in HUBCACHE_FSFAULT_LOG (a file), one line per
// failure ("write ENOSPC <path>"), so a test can tell the fault was really hit.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace {

struct Rule {
  bool on = false;
  int err = 0;
  long long after = 0;  // bytes (writes) or calls (others) let through first
  char sub[PATH_MAX] = {0};
  std::atomic<long long> used{0};
};

Rule g_write, g_fsync, g_rename, g_symlink;
bool g_flock_noop = false;
char g_rofs[PATH_MAX] = {0};
std::size_t g_rofs_len = 0;
char g_log[PATH_MAX] = {0};
std::mutex g_write_mutex;

int parse_errno(const char* s) {
  struct Name {
    const char* name;
    int value;
  };
  static const Name names[] = {{"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EPERM", EPERM},   {"EDQUOT", EDQUOT},
                               {"EROFS", EROFS},   {"EACCES", EACCES}, {"ENOSYS", ENOSYS}, {"EOPNOTSUPP", EOPNOTSUPP},
                               {"ENOLCK", ENOLCK}, {"EXDEV", EXDEV}};
  for (const auto& n : names)
    if (std::strncmp(s, n.name, std::strlen(n.name)) == 0) return n.value;
  return std::atoi(s);
}

void parse_rule(const char* var, Rule& rule) {
  const char* v = std::getenv(var);
  if (!v || !*v) return;
  rule.on = true;
  rule.err = parse_errno(v);
  if (const char* colon = std::strchr(v, ':')) rule.after = std::atoll(colon + 1);
  if (const char* at = std::strchr(v, '@')) std::snprintf(rule.sub, sizeof rule.sub, "%s", at + 1);
}

__attribute__((constructor)) void load_config() {
  parse_rule("HUBCACHE_FSFAULT_WRITE", g_write);
  parse_rule("HUBCACHE_FSFAULT_FSYNC", g_fsync);
  parse_rule("HUBCACHE_FSFAULT_RENAME", g_rename);
  parse_rule("HUBCACHE_FSFAULT_SYMLINK", g_symlink);
  const char* flock_mode = std::getenv("HUBCACHE_FSFAULT_FLOCK");
  g_flock_noop = flock_mode && std::strcmp(flock_mode, "noop") == 0;
  if (const char* ro = std::getenv("HUBCACHE_FSFAULT_ROFS"); ro && *ro) {
    std::snprintf(g_rofs, sizeof g_rofs, "%s", ro);
    g_rofs_len = std::strlen(g_rofs);
    while (g_rofs_len > 1 && g_rofs[g_rofs_len - 1] == '/') g_rofs[--g_rofs_len] = 0;
  }
  if (const char* log = std::getenv("HUBCACHE_FSFAULT_LOG")) std::snprintf(g_log, sizeof g_log, "%s", log);
}

template <typename F>
F real(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

const char* errno_name(int e) {
  switch (e) {
    case ENOSPC:
      return "ENOSPC";
    case EIO:
      return "EIO";
    case EPERM:
      return "EPERM";
    case EDQUOT:
      return "EDQUOT";
    case EROFS:
      return "EROFS";
    case EACCES:
      return "EACCES";
    default:
      return "errno";
  }
}

// Appends one line to the log with the real open/write (never through our hooks).
void note(const char* op, int err, const char* path) {
  if (!g_log[0]) return;
  static auto real_open = real<int (*)(const char*, int, ...)>("open");
  static auto real_write = real<ssize_t (*)(int, const void*, size_t)>("write");
  int fd = real_open(g_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  char line[PATH_MAX + 64];
  int n = std::snprintf(line, sizeof line, "%s %s %s\n", op, errno_name(err), path ? path : "");
  if (n > 0) (void)!real_write(fd, line, static_cast<size_t>(std::min<int>(n, sizeof line - 1)));
  ::close(fd);
}

// The path of a regular file open as `fd`, or false (sockets, pipes, terminals).
bool fd_path(int fd, char* out, std::size_t size) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = ::readlink(link, out, size - 1);
  if (n < 0) return false;
  out[n] = 0;
  return true;
}

bool matches(const Rule& rule, const char* path) { return !rule.sub[0] || (path && std::strstr(path, rule.sub)); }

// Counted rules (everything but writes): true when this call must fail.
bool trips(Rule& rule, const char* path, const char* path2 = nullptr) {
  if (!rule.on || !(matches(rule, path) || (path2 && matches(rule, path2)))) return false;
  return rule.used.fetch_add(1) >= rule.after;
}

// Is `path` (absolute, or relative to `dirfd`) under the read-only prefix?
bool read_only(int dirfd, const char* path) {
  if (!g_rofs_len || !path) return false;
  char full[PATH_MAX * 2];
  if (path[0] == '/') {
    std::snprintf(full, sizeof full, "%s", path);
  } else {
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
      if (!::getcwd(base, sizeof base)) return false;
    } else {
      char link[64];
      std::snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
      ssize_t n = ::readlink(link, base, sizeof base - 1);
      if (n < 0) return false;
      base[n] = 0;
    }
    std::snprintf(full, sizeof full, "%s/%s", base, path);
  }
  return std::strncmp(full, g_rofs, g_rofs_len) == 0 && (full[g_rofs_len] == '/' || full[g_rofs_len] == 0);
}

bool read_only_fd(int fd) {
  char path[PATH_MAX];
  return g_rofs_len && fd_path(fd, path, sizeof path) && read_only(AT_FDCWD, path);
}

int fail(const char* op, int err, const char* path) {
  note(op, err, path);
  errno = err;
  return -1;
}

// How many of `n` bytes a write to `fd` may still put down; -1 (errno set) when none.
ssize_t write_allowance(int fd, size_t n) {
  if (read_only_fd(fd)) return fail("write", EROFS, nullptr);
  if (!g_write.on) return static_cast<ssize_t>(n);
  char path[PATH_MAX];
  if (!fd_path(fd, path, sizeof path) || !matches(g_write, path)) return static_cast<ssize_t>(n);
  std::lock_guard lock(g_write_mutex);
  long long used = g_write.used.load();
  if (used >= g_write.after) return fail("write", g_write.err, path);
  long long room = g_write.after - used;
  size_t allowed = static_cast<size_t>(std::min<long long>(room, static_cast<long long>(n)));
  g_write.used += static_cast<long long>(allowed);
  return static_cast<ssize_t>(allowed);
}

bool wants_write(int flags) { return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0; }

}  // namespace

extern "C" {

ssize_t write(int fd, const void* buf, size_t n) {
  static auto next = real<ssize_t (*)(int, const void*, size_t)>("write");
  ssize_t ok = (g_write.on || g_rofs_len) ? write_allowance(fd, n) : static_cast<ssize_t>(n);
  if (ok < 0) return -1;
  return next(fd, buf, static_cast<size_t>(ok));
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  static auto next = real<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  ssize_t ok = (g_write.on || g_rofs_len) ? write_allowance(fd, n) : static_cast<ssize_t>(n);
  if (ok < 0) return -1;
  return next(fd, buf, static_cast<size_t>(ok), off);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  static auto next = real<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite64");
  ssize_t ok = (g_write.on || g_rofs_len) ? write_allowance(fd, n) : static_cast<ssize_t>(n);
  if (ok < 0) return -1;
  return next(fd, buf, static_cast<size_t>(ok), off);
}

// Vectored writes: all or nothing is enough for the tests (a short count is legal).
static ssize_t vector_write(int fd, const struct iovec* iov, int cnt, ssize_t (*call)(int, const struct iovec*, int)) {
  size_t total = 0;
  for (int i = 0; i < cnt; ++i) total += iov[i].iov_len;
  if (g_write.on || g_rofs_len) {
    ssize_t ok = write_allowance(fd, total);
    if (ok < 0) return -1;
    if (static_cast<size_t>(ok) < total) {
      // Put down only the allowed prefix, through plain write.
      static auto next = real<ssize_t (*)(int, const void*, size_t)>("write");
      size_t left = static_cast<size_t>(ok), done = 0;
      for (int i = 0; i < cnt && left; ++i) {
        size_t part = std::min(left, iov[i].iov_len);
        ssize_t w = next(fd, iov[i].iov_base, part);
        if (w < 0) return done ? static_cast<ssize_t>(done) : -1;
        done += static_cast<size_t>(w);
        left -= static_cast<size_t>(w);
      }
      return static_cast<ssize_t>(done);
    }
  }
  return call(fd, iov, cnt);
}

ssize_t writev(int fd, const struct iovec* iov, int cnt) {
  static auto next = real<ssize_t (*)(int, const struct iovec*, int)>("writev");
  return vector_write(fd, iov, cnt, next);
}

ssize_t pwritev(int fd, const struct iovec* iov, int cnt, off_t off) {
  static auto next = real<ssize_t (*)(int, const struct iovec*, int, off_t)>("pwritev");
  if (g_write.on || g_rofs_len) {
    size_t total = 0;
    for (int i = 0; i < cnt; ++i) total += iov[i].iov_len;
    ssize_t ok = write_allowance(fd, total);
    if (ok < 0) return -1;
    if (static_cast<size_t>(ok) < total) return fail("pwritev", g_write.err, nullptr);
  }
  return next(fd, iov, cnt, off);
}

static int allocation_fault(int fd, off_t len) {
  if (read_only_fd(fd)) return EROFS;
  if (!g_write.on) return 0;
  char path[PATH_MAX];
  if (!fd_path(fd, path, sizeof path) || !matches(g_write, path)) return 0;
  std::lock_guard lock(g_write_mutex);
  if (g_write.used.load() + len > g_write.after) {
    note("fallocate", g_write.err, path);
    return g_write.err;
  }
  return 0;
}

int fallocate(int fd, int mode, off_t off, off_t len) {
  static auto next = real<int (*)(int, int, off_t, off_t)>("fallocate");
  if (int e = allocation_fault(fd, len)) {
    errno = e;
    return -1;
  }
  return next(fd, mode, off, len);
}

int fallocate64(int fd, int mode, off_t off, off_t len) {
  static auto next = real<int (*)(int, int, off_t, off_t)>("fallocate64");
  if (int e = allocation_fault(fd, len)) {
    errno = e;
    return -1;
  }
  return next(fd, mode, off, len);
}

int posix_fallocate(int fd, off_t off, off_t len) {
  static auto next = real<int (*)(int, off_t, off_t)>("posix_fallocate");
  if (int e = allocation_fault(fd, len)) return e;  // returns the error, errno untouched
  return next(fd, off, len);
}

int posix_fallocate64(int fd, off_t off, off_t len) {
  static auto next = real<int (*)(int, off_t, off_t)>("posix_fallocate64");
  if (int e = allocation_fault(fd, len)) return e;
  return next(fd, off, len);
}

int ftruncate(int fd, off_t len) {
  static auto next = real<int (*)(int, off_t)>("ftruncate");
  if (read_only_fd(fd)) return fail("ftruncate", EROFS, nullptr);
  return next(fd, len);
}

int fsync(int fd) {
  static auto next = real<int (*)(int)>("fsync");
  if (g_fsync.on) {
    char path[PATH_MAX];
    if (fd_path(fd, path, sizeof path) && trips(g_fsync, path)) return fail("fsync", g_fsync.err, path);
  }
  return next(fd);
}

int fdatasync(int fd) {
  static auto next = real<int (*)(int)>("fdatasync");
  if (g_fsync.on) {
    char path[PATH_MAX];
    if (fd_path(fd, path, sizeof path) && trips(g_fsync, path)) return fail("fdatasync", g_fsync.err, path);
  }
  return next(fd);
}

int rename(const char* from, const char* to) {
  static auto next = real<int (*)(const char*, const char*)>("rename");
  if (read_only(AT_FDCWD, from) || read_only(AT_FDCWD, to)) return fail("rename", EROFS, to);
  if (trips(g_rename, from, to)) return fail("rename", g_rename.err, to);
  return next(from, to);
}

int renameat(int fd1, const char* from, int fd2, const char* to) {
  static auto next = real<int (*)(int, const char*, int, const char*)>("renameat");
  if (read_only(fd1, from) || read_only(fd2, to)) return fail("renameat", EROFS, to);
  if (trips(g_rename, from, to)) return fail("renameat", g_rename.err, to);
  return next(fd1, from, fd2, to);
}

int renameat2(int fd1, const char* from, int fd2, const char* to, unsigned flags) {
  static auto next = real<int (*)(int, const char*, int, const char*, unsigned)>("renameat2");
  if (read_only(fd1, from) || read_only(fd2, to)) return fail("renameat2", EROFS, to);
  if (trips(g_rename, from, to)) return fail("renameat2", g_rename.err, to);
  return next(fd1, from, fd2, to, flags);
}

int symlink(const char* target, const char* path) {
  static auto next = real<int (*)(const char*, const char*)>("symlink");
  if (read_only(AT_FDCWD, path)) return fail("symlink", EROFS, path);
  if (trips(g_symlink, path)) return fail("symlink", g_symlink.err, path);
  return next(target, path);
}

int symlinkat(const char* target, int dirfd, const char* path) {
  static auto next = real<int (*)(const char*, int, const char*)>("symlinkat");
  if (read_only(dirfd, path)) return fail("symlinkat", EROFS, path);
  if (trips(g_symlink, path)) return fail("symlinkat", g_symlink.err, path);
  return next(target, dirfd, path);
}

int flock(int fd, int op) {
  static auto next = real<int (*)(int, int)>("flock");
  if (g_flock_noop) return 0;
  return next(fd, op);
}

static int fcntl_common(int (*next)(int, int, ...), int fd, int cmd, va_list ap) {
  void* arg = va_arg(ap, void*);
  if (g_flock_noop) {
    switch (cmd) {
      case F_SETLK:
      case F_SETLKW:
      case F_OFD_SETLK:
      case F_OFD_SETLKW:
        return 0;
      case F_GETLK:
      case F_OFD_GETLK:
        static_cast<struct flock*>(arg)->l_type = F_UNLCK;
        return 0;
      default:
        break;
    }
  }
  return next(fd, cmd, arg);
}

int fcntl(int fd, int cmd, ...) {
  static auto next = real<int (*)(int, int, ...)>("fcntl");
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_common(next, fd, cmd, ap);
  va_end(ap);
  return r;
}

int fcntl64(int fd, int cmd, ...) {
  static auto next = real<int (*)(int, int, ...)>("fcntl64");
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_common(next ? next : real<int (*)(int, int, ...)>("fcntl"), fd, cmd, ap);
  va_end(ap);
  return r;
}

// ---- the read-only file system: everything below only matters with HUBCACHE_FSFAULT_ROFS.

static int open_common(const char* name, int dirfd, const char* path, int flags) {
  if (g_rofs_len && wants_write(flags) && read_only(dirfd, path)) return fail(name, EROFS, path);
  return 0;
}

int open(const char* path, int flags, ...) {
  static auto next = real<int (*)(const char*, int, ...)>("open");
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  if (open_common("open", AT_FDCWD, path, flags)) return -1;
  return next(path, flags, mode);
}

int open64(const char* path, int flags, ...) {
  static auto next = real<int (*)(const char*, int, ...)>("open64");
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  if (open_common("open64", AT_FDCWD, path, flags)) return -1;
  return next(path, flags, mode);
}

int openat(int dirfd, const char* path, int flags, ...) {
  static auto next = real<int (*)(int, const char*, int, ...)>("openat");
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  if (open_common("openat", dirfd, path, flags)) return -1;
  return next(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char* path, int flags, ...) {
  static auto next = real<int (*)(int, const char*, int, ...)>("openat64");
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = static_cast<mode_t>(va_arg(ap, int));
    va_end(ap);
  }
  if (open_common("openat64", dirfd, path, flags)) return -1;
  return next(dirfd, path, flags, mode);
}

int creat(const char* path, mode_t mode) {
  static auto next = real<int (*)(const char*, mode_t)>("creat");
  if (read_only(AT_FDCWD, path)) return fail("creat", EROFS, path);
  return next(path, mode);
}

int mkdir(const char* path, mode_t mode) {
  static auto next = real<int (*)(const char*, mode_t)>("mkdir");
  if (read_only(AT_FDCWD, path)) {
    // A read-only mount still reports an existing directory as such.
    struct stat st;
    if (::stat(path, &st) == 0) return fail("mkdir", EEXIST, path);
    return fail("mkdir", EROFS, path);
  }
  return next(path, mode);
}

int mkdirat(int dirfd, const char* path, mode_t mode) {
  static auto next = real<int (*)(int, const char*, mode_t)>("mkdirat");
  if (read_only(dirfd, path)) {
    struct stat st;
    if (::fstatat(dirfd, path, &st, 0) == 0) return fail("mkdirat", EEXIST, path);
    return fail("mkdirat", EROFS, path);
  }
  return next(dirfd, path, mode);
}

int unlink(const char* path) {
  static auto next = real<int (*)(const char*)>("unlink");
  if (read_only(AT_FDCWD, path)) return fail("unlink", EROFS, path);
  return next(path);
}

int unlinkat(int dirfd, const char* path, int flags) {
  static auto next = real<int (*)(int, const char*, int)>("unlinkat");
  if (read_only(dirfd, path)) return fail("unlinkat", EROFS, path);
  return next(dirfd, path, flags);
}

int rmdir(const char* path) {
  static auto next = real<int (*)(const char*)>("rmdir");
  if (read_only(AT_FDCWD, path)) return fail("rmdir", EROFS, path);
  return next(path);
}

int remove(const char* path) {
  static auto next = real<int (*)(const char*)>("remove");
  if (read_only(AT_FDCWD, path)) return fail("remove", EROFS, path);
  return next(path);
}

int link(const char* from, const char* to) {
  static auto next = real<int (*)(const char*, const char*)>("link");
  if (read_only(AT_FDCWD, to)) return fail("link", EROFS, to);
  return next(from, to);
}

int linkat(int fd1, const char* from, int fd2, const char* to, int flags) {
  static auto next = real<int (*)(int, const char*, int, const char*, int)>("linkat");
  if (read_only(fd2, to)) return fail("linkat", EROFS, to);
  return next(fd1, from, fd2, to, flags);
}

int truncate(const char* path, off_t len) {
  static auto next = real<int (*)(const char*, off_t)>("truncate");
  if (read_only(AT_FDCWD, path)) return fail("truncate", EROFS, path);
  return next(path, len);
}

int chmod(const char* path, mode_t mode) {
  static auto next = real<int (*)(const char*, mode_t)>("chmod");
  if (read_only(AT_FDCWD, path)) return fail("chmod", EROFS, path);
  return next(path, mode);
}

int fchmod(int fd, mode_t mode) {
  static auto next = real<int (*)(int, mode_t)>("fchmod");
  if (read_only_fd(fd)) return fail("fchmod", EROFS, nullptr);
  return next(fd, mode);
}

int fchmodat(int dirfd, const char* path, mode_t mode, int flags) {
  static auto next = real<int (*)(int, const char*, mode_t, int)>("fchmodat");
  if (read_only(dirfd, path)) return fail("fchmodat", EROFS, path);
  return next(dirfd, path, mode, flags);
}

int utimensat(int dirfd, const char* path, const struct timespec times[2], int flags) {
  static auto next = real<int (*)(int, const char*, const struct timespec*, int)>("utimensat");
  if (read_only(dirfd, path)) return fail("utimensat", EROFS, path);
  return next(dirfd, path, times, flags);
}

int access(const char* path, int mode) {
  static auto next = real<int (*)(const char*, int)>("access");
  if ((mode & W_OK) && read_only(AT_FDCWD, path)) return fail("access", EROFS, path);
  return next(path, mode);
}

int faccessat(int dirfd, const char* path, int mode, int flags) {
  static auto next = real<int (*)(int, const char*, int, int)>("faccessat");
  if ((mode & W_OK) && read_only(dirfd, path)) return fail("faccessat", EROFS, path);
  return next(dirfd, path, mode, flags);
}

}  // extern "C"
