// The cache as hubcache serve sees it: revisions resolved through refs/, and the
// files of each served commit listed once (one walk of snapshots/<commit>/, one
// realpath per file) and kept, with their hashes and their JSON already written. A
// listing is checked again at most once a second (a stat of each of its folders),
// so files a download adds to a served commit appear within a second.
//
// Thread-safe. Methods marked "blocking" walk folders or hash files: call them on
// the engine's blocking pool, never on a loop thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace hubcache::serve {

namespace fs = std::filesystem;

// A time as the Hub writes dates: 2024-01-31T12:00:00.000Z (UTC).
std::string iso_date(std::time_t t);

struct FileInfo {
  std::string path;  // in the repo
  std::string real;  // the file on disk (symlinks followed), inside the cache root
  std::uint64_t size = 0;
  std::string oid;     // git blob sha1 (of the LFS pointer for LFS files); "" while unhashed
  std::string sha256;  // LFS files only
  std::uint64_t pointer_size = 0;
  bool lfs() const { return !sha256.empty(); }
  bool hashed() const { return !oid.empty(); }
};

// One commit's files as listed. Immutable once built.
struct Snapshot {
  std::string commit;
  std::time_t date = 0;         // the snapshot folder's mtime (lastCommit.date)
  std::vector<FileInfo> files;  // sorted by path
  std::unordered_map<std::string, std::size_t> by_path;
  std::vector<std::string> dirs;  // every folder, sorted
  std::size_t unhashed = 0;       // real files whose hash is not known yet
  // Pre-written JSON (only when unhashed == 0): tree entries without and with
  // lastCommit, in files / dirs order, and the siblings arrays of repo info.
  std::vector<std::string> file_json, file_json_expand, dir_json, dir_json_expand;
  std::string siblings, siblings_blobs;

  const FileInfo* find(const std::string& path) const {
    auto it = by_path.find(path);
    return it == by_path.end() ? nullptr : &files[it->second];
  }

  // For revalidation: each folder of the snapshot and its change time when listed.
  struct Stamp {
    std::string dir;
    std::int64_t mtime_ns;
    std::uint64_t ino;
  };
  std::vector<Stamp> stamps;
  mutable std::atomic<std::int64_t> checked_ms{0};  // last validation (steady clock)
};

class Catalog {
 public:
  explicit Catalog(fs::path root);  // the canonical cache root

  const fs::path& root() const { return root_; }

  // A revision (branch, tag, refs/pr/N, 40-hex commit, unique 7+ hex prefix, HEAD)
  // to a commit whose snapshot folder exists. A branch costs one stat while its refs/
  // file is unchanged. A prefix lists snapshots/ (small).
  std::optional<std::string> resolve_revision(const fs::path& repo, std::string rev);

  // The listing of a commit if it is built and still current (checks at most once a
  // second: one stat per folder); nullptr when it must be (re)built.
  std::shared_ptr<const Snapshot> cached(const fs::path& repo, const std::string& commit);
  // Lists the commit's folder (blocking). With `hash_all`, real files (a cache written
  // without symlinks) whose hash neither their link nor trees/<commit>.json tells are
  // hashed, once per (size, mtime), so every entry and the JSON are complete.
  std::shared_ptr<const Snapshot> build(const fs::path& repo, const std::string& commit, bool hash_all);
  // Drops a listing that turned out stale (a listed file could not be opened).
  void forget(const fs::path& repo, const std::string& commit);

  // The hash of one unhashed real file (blocking: may read the whole file).
  FileInfo complete(const fs::path& repo, const std::string& commit, FileInfo f);

  // The blob with this sha256 anywhere in the cache (blocking on a miss: looks in
  // blobs/ of every repo).
  std::optional<std::string> find_sha256(const std::string& sha);
  std::optional<std::string> known_sha256(const std::string& sha);  // only what listings saw

 private:
  std::string real_file_etag(const fs::path& repo, const std::string& commit, const std::string& path,
                             const std::string& real, std::uint64_t size, bool hash);
  bool inside_root(const fs::path& real) const;
  bool still_current(const Snapshot& s) const;
  void finish_json(Snapshot& s) const;

  const fs::path root_;
  std::mutex mutex_;
  struct RefEntry {
    std::int64_t mtime_ns = 0;
    std::uint64_t ino = 0, size = 0;
    std::string commit;
  };
  std::unordered_map<std::string, RefEntry> refs_;                              // <repo>/refs/<rev> -> commit
  std::unordered_map<std::string, std::shared_ptr<const Snapshot>> snapshots_;  // <repo>\n<commit>
  struct Hashed {
    std::uint64_t size;
    std::int64_t mtime;
    std::string etag;
  };
  std::map<std::string, Hashed> hashes_;  // real path -> blob name of real files in snapshots
  struct Listing {
    bool loaded = false;
    std::int64_t mtime = 0;
    std::map<std::string, std::pair<std::uint64_t, std::string>> files;  // path -> size, etag
  };
  std::map<std::string, Listing> listings_;                 // trees/<commit>.json -> its files
  std::unordered_map<std::string, std::string> by_sha256_;  // CDN index
};

}  // namespace hubcache::serve
