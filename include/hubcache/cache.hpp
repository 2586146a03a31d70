// hubcache/cache.hpp: the seed API. Where a Hub file lives in the cache, whether
// it is there, and getting it there.
//
// `repo` is "org/name" (or a legacy single name such as "gpt2"); `file` is a
// path inside the repo with '/' separators ("onnx/model.onnx"). Invalid repo ids
// and file names that would escape the repo folder ("..", absolute paths, drive
// letters, backslashes) throw Error(ErrorCode::invalid_argument) before any I/O.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hubcache/options.hpp"

// Exported by libhubcache.so, which is built with hidden visibility (cmake/hubcache.map.in).
#pragma GCC visibility push(default)
namespace hubcache {

// The resolved cache root: options.cache_dir, else the environment (settings.hpp),
// made absolute with symlinks resolved, as Python does. Creates the directory
// if it is missing (throws Error(io) if that fails).
std::filesystem::path cache_root(const Options& options = {});

// The same root with no filesystem writes (and no creation).
std::filesystem::path resolve_cache_root(const Options& options = {});

// What the cache knows about one file at one revision, like Python's
// try_to_load_from_cache.
struct CacheLookup {
  enum class Status {
    cached,            // `path` is a complete file
    missing_upstream,  // the Hub said the file does not exist at `commit` (.no_exist)
    unknown,           // not in the cache: the Hub must be asked
  };
  Status status = Status::unknown;
  std::filesystem::path path;  // the file in snapshots/<commit>/ when cached
  std::string commit;          // the commit the revision resolved to, when known
};

// Offline lookup: reads refs/<revision> and stats the snapshot entry. No network,
// no writes. A 40-hex revision is used as the commit directly.
CacheLookup lookup(std::string_view repo, std::string_view file, const Options& options = {});

// True only if the file resolves to a complete file in the cache.
bool is_cached(std::string_view repo, std::string_view file, const Options& options = {});

// Where the file is or would be: <root>/<repo folder>/snapshots/<commit>/<file>.
// No network, no writes. nullopt when the revision is a branch or tag whose
// commit is not recorded in refs/ yet (the path cannot be known offline).
// With Layout::flat: <root>/<repo>/<file>, always known.
std::optional<std::filesystem::path> path(std::string_view repo, std::string_view file,
                                          const Options& options = {});

// The snapshot folder of a revision, <root>/<repo folder>/snapshots/<commit>, when
// the commit is known locally (a 40-hex revision, or refs/<revision>). No network,
// no writes; the folder may be incomplete or absent.
std::optional<std::filesystem::path> snapshot_path(std::string_view repo, const Options& options = {});

// The local path of the file, downloading it on a miss. Offline (options.offline
// or HF_HUB_OFFLINE), a miss throws Error(not_cached) naming the repo, file and
// revision. Online: a cached 40-hex revision costs no request; a branch costs
// one HEAD unless options.max_age_seconds trusts the recorded ref. When the Hub
// cannot be reached and the file is cached for that revision, the cached path is
// returned. Throws Error with the code of the failure (see error.hpp).
std::filesystem::path fetch(std::string_view repo, std::string_view file, const Options& options = {});

// ---------------------------------------------------------------------------
// Whole repos (snapshot_download).

struct SnapshotOptions {
  // fnmatchcase patterns ('*' crosses '/'; "dir/" means "dir/*"). A path is kept when
  // it matches an allow pattern (if any) and no ignore pattern.
  std::vector<std::string> allow_patterns;
  std::vector<std::string> ignore_patterns;
  int max_workers = 8;  // files downloaded in parallel
  // When set: real files in this folder plus .cache/huggingface/download/<path>.metadata
  // (huggingface_hub's local_dir format) instead of the cache's snapshots/.
  std::filesystem::path local_dir;
  // Resolve and list, write nothing; SnapshotResult::files says what would be downloaded.
  bool dry_run = false;
  // Called once the file list is known, before any download (e.g. to size a progress bar).
  std::function<void(const struct SnapshotResult&)> on_plan;
};

struct SnapshotFile {
  std::string path;   // inside the repo
  std::uint64_t size = 0;
  std::string etag;   // blob name: sha256 for LFS files, git blob sha1 otherwise
  bool cached = false;         // already present (snapshot pointer, blob, or up-to-date local_dir file)
  bool will_download = false;  // not cached (or force_download)
  // After the download: this call moved the file's bytes (false when it was cached,
  // copied from the cache into a local_dir, or published meanwhile by another process
  // that held the file's lock first).
  bool downloaded = false;
};

struct SnapshotResult {
  std::filesystem::path path;  // <cache>/<repo folder>/snapshots/<commit>, or local_dir
  std::string commit;
  std::vector<SnapshotFile> files;  // the files selected by the patterns
};

// Downloads every selected file of a revision (reference §5): the revision is
// resolved once to a commit, the file list comes from the tree API (or the
// trees/<commit>.json cache), sizes and blob names from the listing (no HEAD per
// file), files in parallel, each from /resolve/<commit>/ so a moving branch can
// never mix revisions. Cached files cost nothing. Offline (or the Hub unreachable),
// resolves from the cache and throws Error(not_cached) when the snapshot is absent
// or, per trees/<commit>.json, incomplete.
SnapshotResult snapshot(std::string_view repo, const Options& options = {},
                        const SnapshotOptions& snapshot_options = {});

}  // namespace hubcache
#pragma GCC visibility pop
