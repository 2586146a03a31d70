// hubcache/admin.hpp: cache management (scan, rm, prune, gc, verify).
//
// Everything here works offline on a hub cache root and is safe while other
// processes download into the same cache: a blob or .incomplete file whose
// download lock (<root>/.locks/<folder>/<etag>.lock) is held is never deleted,
// and files vanishing during a scan are tolerated.
//
//   auto report = hubcache::admin::scan_cache(hubcache::cache_root());
//   auto plan = hubcache::admin::plan_gc(report, {.max_size = 50'000'000'000});
//   std::cout << plan.expected_freed << "\n";
//   plan.execute();
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hubcache/options.hpp"

// Exported by libhubcache.so, which is built with hidden visibility (cmake/hubcache.map.in).
#pragma GCC visibility push(default)
namespace hubcache::admin {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

struct CachedFile {
  std::string name;    // path inside the repo ("sub/dir/file.txt")
  fs::path file_path;  // snapshots/<commit>/<name>
  fs::path repo_blob;  // first hop: <repo>/blobs/<etag>, or file_path itself for a real file
  fs::path blob_path;  // fully resolved (a shared-store file when repo_blob is a link into it)
  std::uint64_t size = 0;
  TimePoint last_accessed{};       // blob atime
  TimePoint last_modified{};       // blob mtime
  bool repo_blob_is_link = false;  // repo blob is a symlink into the shared store
};

struct CachedRevision {
  std::string commit;
  fs::path snapshot_path;
  std::vector<CachedFile> files;
  std::vector<std::string> refs;  // sorted; empty = detached
  std::uint64_t size = 0;         // unique blobs of this revision
  TimePoint last_accessed{};      // max over blobs of max(atime, mtime): when it was last used
  TimePoint last_modified{};      // max blob mtime (snapshot dir mtime when empty)
};

struct CachedRepo {
  std::string repo_id;
  RepoType type = RepoType::model;
  fs::path path;
  std::vector<CachedRevision> revisions;    // sorted by commit
  std::map<std::string, std::string> refs;  // ref name -> commit
  std::uint64_t size = 0;                   // unique blobs over all revisions
  std::size_t nb_files = 0;                 // unique blobs
  TimePoint last_accessed{};
  TimePoint last_modified{};
  // "model/org/name"
  std::string cache_id() const;
};

struct IncompleteFile {
  fs::path path;
  std::string repo_folder;  // "models--org--name"
  std::string etag;         // from <etag>.<8hex>.incomplete or legacy <etag>.incomplete
  std::uint64_t size = 0;   // bytes allocated on disk (a partial is sparse), at most its apparent size
  TimePoint last_modified{};
  fs::path lock_path;  // the lock a live download of this etag holds
};

struct ScanReport {
  fs::path root;
  std::vector<CachedRepo> repos;  // valid repos only, sorted by cache_id
  std::uint64_t size = 0;         // unique resolved blobs over all valid repos
  std::vector<IncompleteFile> incomplete;
  std::uint64_t incomplete_size = 0;
  // One line per corrupted entry ("<path>: <why>"); such a repo is left out of `repos`.
  std::vector<std::string> warnings;
  std::size_t revision_count() const;
};

// Scans a hub cache root (Python scan_cache_dir rules, reference §6.1, plus the
// shared blob store of §2.10). Throws Error(not_cached) if `root` does not exist,
// Error(invalid_argument) if it is not a directory. Never throws for a corrupted
// repo: it becomes a warning. Uses POSIX directory reads and one stat per blob.
ScanReport scan_cache(const fs::path& root);

// What a deletion will do, computed before anything is touched.
struct DeletePlan {
  fs::path root;
  std::vector<fs::path> repos;       // whole repo folders
  std::vector<fs::path> snapshots;   // snapshots/<commit>
  std::vector<fs::path> refs;        // refs/<name>
  std::vector<fs::path> blobs;       // repo-level blobs (links into the shared store are unlinked only)
  std::vector<fs::path> incomplete;  // stale .incomplete files
  // Leftovers of killed writes (prune only): `<name>.<8hex>.tmp` of an atomic write
  // (refs, tree listings, snapshot links), resume journals whose partial is gone.
  std::vector<fs::path> temps;
  // Lock that must be free at execution time for each blob / incomplete file (same order).
  std::vector<fs::path> blob_locks;
  std::vector<fs::path> incomplete_locks;
  // Per temp: the download lock that must be free, or "" when only its age counts
  // (it must still be older than kStaleTempAge when it is deleted).
  std::vector<fs::path> temp_locks;
  // Bytes each entry releases (same order as the paths above).
  std::vector<std::uint64_t> repo_bytes, snapshot_bytes, blob_bytes, incomplete_bytes, temp_bytes;
  std::uint64_t expected_freed = 0;
  std::size_t nb_repos = 0;
  std::size_t nb_revisions = 0;
  // Human lines: "model/org/name (whole repo, 1.2G)", "model/org/name@<commit> [main] (3.4M)".
  std::vector<std::string> entries;
  // Things left alone: unknown targets, entries protected by a live download.
  std::vector<std::string> warnings;

  bool empty() const {
    return repos.empty() && snapshots.empty() && refs.empty() && blobs.empty() && incomplete.empty() && temps.empty();
  }

  struct Result {
    std::uint64_t freed = 0;            // bytes actually released
    std::vector<std::string> warnings;  // missing paths, entries skipped because a download holds them
  };
  // Deletes in a safe order: repos, refs, snapshots, blobs, incomplete files, temps.
  // Blobs go last so an interruption never leaves a link to a missing blob;
  // refs go before their snapshot (Python does the reverse) so a concurrent scan
  // or an interruption sees a detached revision, never a ref to a missing commit. Re-checks
  // every lock just before deleting, and, holding the blobs' locks, what the remaining
  // snapshots link to and which refs exist: a revision a download created since the scan
  // keeps its blobs and its snapshot (a warning says so). Missing paths are warnings, not errors.
  // Throws Error(io) only when a path exists and cannot be removed.
  Result execute() const;
};

// rm: targets are "type/org/name" (case-insensitive), "hf://models/org/name"
// (datasets/, spaces/), or a full 40-hex commit. Unknown targets are warnings.
// Throws Error(invalid_argument) for a target of none of these shapes.
DeletePlan plan_rm(const ScanReport& report, const std::vector<std::string>& targets);

// A temp file of an atomic write untouched this long is a leftover: such writes take
// milliseconds (a no-symlink copy keeps its mtime fresh while it runs).
inline constexpr std::chrono::minutes kStaleTempAge{5};

// prune: every detached revision, every .incomplete file no live download holds,
// and the leftovers of killed writes under report.root: `<name>.<8hex>.tmp` files
// (refs, trees, snapshots, .no_exist, blobs, the root) older than kStaleTempAge,
// and resume journals (`<partial>.resume`, `.resume.tmp`) whose partial is gone and
// whose download lock is free. `now` is for tests.
DeletePlan plan_prune(const ScanReport& report, TimePoint now = Clock::now());

struct GcPolicy {
  std::optional<std::uint64_t> max_size{};           // evict until the cache is at most this many bytes
  std::optional<std::chrono::seconds> older_than{};  // evict revisions not used for this long
  TimePoint now = Clock::now();
  // A revision holding a file for which this returns true (given the repo-level blob,
  // blobs/<etag>) is never evicted: `hubcache serve --upstream` keeps what it is
  // serving right now. Unset: only download locks protect.
  std::function<bool(const fs::path& repo_blob)> keep{};
};
// gc: evicts least-recently-used revisions (detached ones first) until the
// policy holds. A revision's last use is the newest atime/mtime of the blobs only
// it holds (a blob shared by several revisions cannot tell which one was read). Blobs of kept revisions and blobs held
// by a live download are never deleted; a revision holding a locked blob is never evicted. Throws
// Error(invalid_argument) when the policy sets neither limit.
DeletePlan plan_gc(const ScanReport& report, const GcPolicy& policy);

// ---- verify -------------------------------------------------------------

// One file of a reference tree listing (trees/<commit>.json, or one day the Hub's tree API).
struct TreeEntry {
  std::uint64_t size = 0;
  std::string blob_id;     // git blob sha1
  std::string lfs_sha256;  // empty for regular files
};
using TreeListing = std::map<std::string, TreeEntry>;

// Reads <repo>/trees/<commit>.json (Python format, reference §2.11); nullopt if
// absent or not understood.
std::optional<TreeListing> read_tree_cache(const fs::path& repo_dir, const std::string& commit);

struct FileCheck {
  enum class Status { ok, mismatch, unverifiable, unreadable };
  std::string name;
  Status status = Status::ok;
  std::string expected;  // the hash the file must have
  std::string actual;    // the hash it has
  std::string detail;    // why unverifiable / unreadable
};

struct VerifyReport {
  std::string repo_id;
  RepoType type = RepoType::model;
  std::string commit;
  std::vector<FileCheck> files;
  bool has_listing = false;          // missing/extra are only known with a listing
  std::vector<std::string> missing;  // in the listing, not in the snapshot
  std::vector<std::string> extra;    // in the snapshot, not in the listing
  std::size_t count(FileCheck::Status s) const;
};

// Hashes every file of one cached revision, offline. A file `listing` has (when
// given, else trees/<commit>.json when present) is checked against the listing's
// sha256 (LFS) or git blob sha1; any other file against its blob name when that is
// a 64-hex sha256 or 40-hex git blob sha1, else it is reported unverifiable.
// `revision`: a 40-hex commit or a ref name; when empty, refs/main, else the
// only snapshot. Throws Error(not_cached) when the repo or revision is not in
// the cache, Error(invalid_argument) when the revision is ambiguous.
// `listing` is the seam for online verification: pass the Hub's tree listing.
VerifyReport verify_revision(const fs::path& root, const std::string& repo_id, RepoType type,
                             const std::string& revision = "", const TreeListing* listing = nullptr);

// ---- formatting shared by the CLI ---------------------------------------

// Python's _format_size: decimal units, one decimal, no "B" ("970.7M", "8.8K", "512").
std::string format_size(std::uint64_t bytes);
// "a few seconds ago", "3 days ago" (Python's _format_timesince).
std::string format_timesince(TimePoint t, TimePoint now = Clock::now());
// "50G", "1.5gb", "123" -> bytes (powers of 1000). Throws Error(invalid_argument).
std::uint64_t parse_size(const std::string& text);
// "30d", "12h", "2w", "3mo", "1y", "45s", "10m" -> seconds. Throws Error(invalid_argument).
std::chrono::seconds parse_duration(const std::string& text);

}  // namespace hubcache::admin
#pragma GCC visibility pop
