// The hub cache on disk for one repo: where everything lives, and the few
// primitive writes (refs, pointers, .no_exist markers) every writer shares.
//
// Layout (byte-compatible with Python huggingface_hub):
//   <root>/.locks/<folder>/<etag>.lock
//   <root>/<folder>/blobs/<etag>                 content (sha256 or git blob sha1)
//   <root>/<folder>/blobs/<etag>.<8hex>.incomplete
//   <root>/<folder>/refs/<revision>               40-hex commit, no newline
//   <root>/<folder>/snapshots/<commit>/<file>    relative symlink to ../../blobs/<etag>
//   <root>/<folder>/.no_exist/<commit>/<file>    empty marker: not on the Hub
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "hubcache/cache.hpp"
#include "hubcache/options.hpp"

namespace hubcache::store {

namespace fs = std::filesystem;

// How many times a write whose folder a concurrent `gc` or `rm` deleted is retried
// after making the folder again (bounded: a gc evicting everything in a loop must
// not keep a download busy forever).
inline constexpr int kVanishedFolderRetries = 5;

class RepoCache {
 public:
  // `root` must already be resolved (absolute). Validates repo_id.
  RepoCache(fs::path root, std::string repo_id, RepoType type);

  const fs::path& root() const { return root_; }
  const std::string& repo_id() const { return repo_id_; }
  RepoType type() const { return type_; }
  const std::string& folder_name() const { return folder_; }
  const fs::path& repo_dir() const { return repo_dir_; }

  fs::path blobs_dir() const { return repo_dir_ / "blobs"; }
  fs::path blob_path(std::string_view etag) const { return blobs_dir() / std::string(etag); }
  fs::path snapshots_dir() const { return repo_dir_ / "snapshots"; }
  fs::path snapshot_dir(std::string_view commit) const { return snapshots_dir() / std::string(commit); }
  // Validates `file` (no escaping the repo folder).
  fs::path pointer_path(std::string_view commit, std::string_view file) const;
  fs::path ref_path(std::string_view revision) const;
  fs::path no_exist_path(std::string_view commit, std::string_view file) const;
  fs::path locks_dir() const { return root_ / ".locks" / folder_; }
  fs::path lock_path(std::string_view etag) const { return locks_dir() / (std::string(etag) + ".lock"); }

  // The commit recorded in refs/<revision> (whitespace stripped; must be 40 hex).
  std::optional<std::string> read_ref(std::string_view revision) const;
  // Age of refs/<revision> (time since it was last written or confirmed).
  std::optional<std::chrono::seconds> ref_age(std::string_view revision) const;
  // A 40-hex revision is its own commit; anything else goes through refs/.
  std::optional<std::string> resolve_commit(std::string_view revision) const;

  // try_to_load_from_cache (reference §2.13). Only stat()s and one small read.
  CacheLookup lookup(std::string_view file, std::string_view revision) const;

  // Writes refs/<revision> = commit (exactly 40 bytes, atomically) when it is
  // missing or different; otherwise refreshes its mtime (so max-age works).
  // Also creates snapshots/<commit>/ first so a scan never sees a dangling ref.
  void write_ref(std::string_view revision, std::string_view commit) const;
  // Empty marker .no_exist/<commit>/<file>. Best effort: errors are ignored.
  void write_no_exist(std::string_view commit, std::string_view file) const noexcept;

  // Makes `pointer` resolve to `blob`: a relative symlink, created under a temp
  // name and renamed into place. Without symlinks (HF_HUB_DISABLE_SYMLINKS or a
  // filesystem that refuses them) a new blob is moved to the pointer and an
  // existing one is copied, as Python does. Call it holding the blob's lock: the
  // pointer's folders, when a concurrent gc or rm deletes them meanwhile, are made
  // again (up to kVanishedFolderRetries times).
  void link_pointer(const fs::path& blob, const fs::path& pointer, bool new_blob) const;

  // Throws Error(io) when `dir` or one of its parents below the repo folder is a
  // symlink: hubcache never creates symlinked folders inside a repo folder, so one
  // was planted (by mistake, or by someone sharing the cache) and writing through
  // it would land outside the cache. The cache root, the repo folder and blobs/
  // themselves may be symlinks (a cache moved to another disk).
  void refuse_planted_symlinks(const fs::path& dir) const;

 private:
  fs::path root_;
  std::string repo_id_;
  RepoType type_;
  std::string folder_;
  fs::path repo_dir_;
};

// The commit a refs/<revision> file names: its content without surrounding whitespace
// (Python writes exactly 40 bytes; other tools may add a newline), when that is 40 lowercase
// hex; nullopt otherwise.
std::optional<std::string> parse_ref(std::string_view content);

// Creates <root>/CACHEDIR.TAG with Python's exact content if missing (best effort).
void write_cachedir_tag(const fs::path& root) noexcept;

// Whether symlinks can be created inside `dir` (tested once per directory and
// remembered); false when HF_HUB_DISABLE_SYMLINKS is set.
bool symlinks_supported(const fs::path& dir);

// An advisory inter-process lock (flock) on a lock file that is never deleted,
// created with mode 0664 so users sharing a cache can wait on each other.
// Correctness never depends on it: on filesystems where flock is missing or a
// no-op, holders simply proceed.
class FileLock {
 public:
  // Blocks until the lock is held, or until `cancel` is raised (throws
  // Error(cancelled)). Creates the parent directory.
  explicit FileLock(const fs::path& path, const std::atomic<bool>* cancel = nullptr);
  // Tries once without waiting: busy() when another holder has it.
  struct TryOnce {};
  FileLock(const fs::path& path, TryOnce);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  // False when the filesystem gave no lock (flock unsupported): proceed anyway.
  bool held() const { return held_; }
  // Only after TryOnce: someone else holds the lock (held() is then false too).
  bool busy() const { return busy_; }
  // Non-blocking probe: is some process holding this lock right now?
  static bool is_locked(const fs::path& path);

 private:
  int fd_ = -1;
  bool held_ = false;
  bool busy_ = false;
};

}  // namespace hubcache::store
