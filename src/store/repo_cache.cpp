#include "store/repo_cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"
#include "util/fs.hpp"

namespace hubcache::store {

RepoCache::RepoCache(fs::path root, std::string repo_id, RepoType type)
    : root_(std::move(root)), repo_id_(std::move(repo_id)), type_(type) {
  layout::validate_repo_id(repo_id_);
  folder_ = layout::repo_folder_name(repo_id_, type_);
  repo_dir_ = root_ / folder_;
}

fs::path RepoCache::pointer_path(std::string_view commit, std::string_view file) const {
  layout::validate_filename(file);
  return snapshot_dir(commit) / std::string(file);
}

fs::path RepoCache::ref_path(std::string_view revision) const {
  layout::validate_revision(revision);
  return repo_dir_ / "refs" / std::string(revision);
}

fs::path RepoCache::no_exist_path(std::string_view commit, std::string_view file) const {
  layout::validate_filename(file);
  return repo_dir_ / ".no_exist" / std::string(commit) / std::string(file);
}

std::optional<std::string> RepoCache::read_ref(std::string_view revision) const {
  auto content = util::read_small_file(ref_path(revision));
  if (!content) return std::nullopt;
  return parse_ref(*content);
}

std::optional<std::string> parse_ref(std::string_view content) {
  auto b = content.find_first_not_of(" \t\r\n");
  auto e = content.find_last_not_of(" \t\r\n");
  if (b == std::string_view::npos) return std::nullopt;
  std::string commit(content.substr(b, e - b + 1));
  if (!layout::is_commit_hash(commit)) return std::nullopt;
  return commit;
}

std::optional<std::chrono::seconds> RepoCache::ref_age(std::string_view revision) const {
  struct stat st;
  if (::stat(ref_path(revision).c_str(), &st) != 0) return std::nullopt;
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto age = std::chrono::duration_cast<std::chrono::seconds>(now) - std::chrono::seconds(st.st_mtime);
  return age.count() < 0 ? std::chrono::seconds(0) : age;
}

std::optional<std::string> RepoCache::resolve_commit(std::string_view revision) const {
  if (layout::is_commit_hash(revision)) return std::string(revision);
  return read_ref(revision);
}

CacheLookup RepoCache::lookup(std::string_view file, std::string_view revision) const {
  layout::validate_filename(file);
  CacheLookup out;
  // A 40-hex revision may still have a refs/ entry pointing to itself; either way
  // the commit is the revision. Only stat() and one small read below.
  auto commit = resolve_commit(revision);
  if (!commit) return out;
  out.commit = *commit;
  if (util::is_regular_file(no_exist_path(*commit, file))) {
    out.status = CacheLookup::Status::missing_upstream;
    return out;
  }
  auto pointer = pointer_path(*commit, file);
  if (util::is_regular_file(pointer)) {
    out.status = CacheLookup::Status::cached;
    out.path = std::move(pointer);
  }
  return out;
}

void RepoCache::refuse_planted_symlinks(const fs::path& dir) const {
  const auto rel = dir.lexically_normal().lexically_relative(repo_dir_.lexically_normal());
  if (rel.empty() || *rel.begin() == "..") return;  // not inside this repo folder
  fs::path at = repo_dir_;
  for (const auto& part : rel) {
    if (part == ".") continue;
    at /= part;
    if (at == blobs_dir()) continue;
    struct stat st;
    if (::lstat(at.c_str(), &st) != 0) return;  // the rest does not exist yet: nothing to follow
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      auto target = fs::read_symlink(at, ec);
      throw Error(ErrorCode::io, "Refusing to write through " + at.string() + ", a symlink to " + target.string() +
                                     " inside the cache (hubcache never creates one there). Remove it and retry.");
    }
  }
}

void RepoCache::write_ref(std::string_view revision, std::string_view commit) const {
  if (!layout::is_commit_hash(commit))
    throw Error(ErrorCode::internal, "refusing to record a non-commit '" + std::string(commit) + "' as a ref");
  auto ref = ref_path(revision);
  refuse_planted_symlinks(snapshot_dir(commit));
  refuse_planted_symlinks(ref.parent_path());
  util::make_dirs(snapshot_dir(commit));
  util::make_dirs(ref.parent_path());
  auto current = util::read_small_file(ref);
  if (current && *current == commit) {
    ::utimensat(AT_FDCWD, ref.c_str(), nullptr, 0);  // confirmed now: refresh for max-age
    return;
  }
  for (int attempt = 0;; ++attempt) {
    try {
      util::atomic_write(ref, commit);
      return;
    } catch (const Error&) {
      // The repo folder went meanwhile (a concurrent gc or rm of the whole repo):
      // make the folders again. Any other failure stands.
      std::error_code ec;
      if (attempt >= kVanishedFolderRetries || fs::exists(ref.parent_path(), ec)) throw;
    }
    refuse_planted_symlinks(snapshot_dir(commit));
    refuse_planted_symlinks(ref.parent_path());
    util::make_dirs(snapshot_dir(commit));
    util::make_dirs(ref.parent_path());
  }
}

void RepoCache::write_no_exist(std::string_view commit, std::string_view file) const noexcept {
  try {
    auto marker = no_exist_path(commit, file);
    refuse_planted_symlinks(marker.parent_path());
    std::error_code ec;
    fs::create_directories(marker.parent_path(), ec);
    refuse_planted_symlinks(marker.parent_path());  // planted while we created the folders
    int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd >= 0) ::close(fd);
  } catch (...) {
  }
}

void RepoCache::link_pointer(const fs::path& blob, const fs::path& pointer, bool new_blob) const {
  auto make_folders = [&] {
    refuse_planted_symlinks(pointer.parent_path());
    util::make_dirs(pointer.parent_path());
    refuse_planted_symlinks(pointer.parent_path());
  };
  make_folders();
  // ENOENT below: the snapshot folder went meanwhile (a concurrent gc or rm of the
  // revision, which may run again and again). Its folders are made again, a few
  // times; the blob itself is safe, we hold its lock.
  if (symlinks_supported(pointer.parent_path())) {
    const auto target = layout::relative_link_target(pointer, blob);
    // Made in place when the name is free (symlink() is atomic, and it never
    // replaces); an existing entry is replaced by a temp link and a rename.
    if (::symlink(target.c_str(), pointer.c_str()) == 0) return;
    for (int attempt = 0;; ++attempt) {
      auto tmp = pointer;
      tmp += "." + util::random_hex8() + ".tmp";
      if (::symlink(target.c_str(), tmp.c_str()) == 0) {
        if (::rename(tmp.c_str(), pointer.c_str()) == 0) return;
        const int err = errno;
        ::unlink(tmp.c_str());
        if (err != ENOENT || attempt >= kVanishedFolderRetries)
          util::throw_errno(err, "Cannot create " + pointer.string());
      } else if (errno != ENOENT || attempt >= kVanishedFolderRetries) {
        // EPERM/EACCES across volumes: fall through to the copy below, as Python does.
        if (errno != EPERM && errno != EACCES && errno != EOPNOTSUPP && errno != ENOSYS)
          util::throw_errno(errno, "Cannot create symlink " + pointer.string());
        break;
      }
      make_folders();
    }
  }
  if (new_blob) {
    for (int attempt = 0;; ++attempt) {
      if (::rename(blob.c_str(), pointer.c_str()) == 0) return;
      if (errno != ENOENT || !util::is_regular_file(blob) || attempt >= kVanishedFolderRetries) break;
      make_folders();
    }
    if (errno != EXDEV) util::throw_errno(errno, "Cannot move " + blob.string() + " to " + pointer.string());
  }
  util::copy_file_atomically(blob, pointer);
}

void write_cachedir_tag(const fs::path& root) noexcept {
  auto tag = root / "CACHEDIR.TAG";
  struct stat st;
  if (::stat(tag.c_str(), &st) == 0) return;
  try {
    util::atomic_write(tag,
                       "Signature: 8a477f597d28d172789f06886806bc55\n"
                       "# This file is a cache directory tag created by huggingface_hub.\n"
                       "# For information about cache directory tags, see:\n"
                       "#\thttps://bford.info/cachedir/\n");
  } catch (...) {
  }
}

bool symlinks_supported(const fs::path& dir) {
  if (Settings::get().disable_symlinks) return false;
  static std::mutex mutex;
  static std::map<fs::path, bool> known;
  std::lock_guard lock(mutex);
  if (auto it = known.find(dir); it != known.end()) return it->second;
  auto probe = dir / (".hubcache-symlink-probe." + util::random_hex8());
  bool ok = ::symlink("dummy_file_src", probe.c_str()) == 0;
  if (ok) ::unlink(probe.c_str());
  // A failure other than "not supported" (say, a read-only dir) says nothing about
  // symlinks: assume they work and let the real operation report the error.
  if (!ok && errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS) ok = true;
  known.emplace(dir, ok);
  return ok;
}

FileLock::FileLock(const fs::path& path, const std::atomic<bool>* cancel) {
  util::make_dirs(path.parent_path());
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0664);
  if (fd_ < 0) util::throw_errno(errno, "Cannot open lock file " + path.string());
  struct stat st;
  if (::fstat(fd_, &st) == 0 && st.st_uid == ::getuid() && (st.st_mode & 0777) != 0664)
    ::fchmod(fd_, 0664);  // ignore the umask: others sharing the cache must be able to wait
  for (;;) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
      held_ = true;
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return;  // ENOLCK/EOPNOTSUPP: no locking here; proceed unlocked
    if (cancel && cancel->load()) {
      ::close(fd_);
      fd_ = -1;
      throw Error(ErrorCode::cancelled, "Cancelled while waiting for " + path.string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

FileLock::FileLock(const fs::path& path, TryOnce) {
  util::make_dirs(path.parent_path());
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0664);
  if (fd_ < 0) util::throw_errno(errno, "Cannot open lock file " + path.string());
  struct stat st;
  if (::fstat(fd_, &st) == 0 && st.st_uid == ::getuid() && (st.st_mode & 0777) != 0664) ::fchmod(fd_, 0664);
  int rc;
  do {
    rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0)
    held_ = true;
  else
    busy_ = errno == EWOULDBLOCK;  // otherwise no locking here (ENOLCK/EOPNOTSUPP): proceed unlocked
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock; the file stays (never deleted)
}

bool FileLock::is_locked(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  bool locked = false;
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0)
    locked = errno == EWOULDBLOCK;
  else
    ::flock(fd, LOCK_UN);
  ::close(fd);
  return locked;
}

}  // namespace hubcache::store
