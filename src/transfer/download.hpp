// Downloads into the cache: the online half of hubcache::fetch.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <string_view>

#include "hub/hub_client.hpp"
#include "hubcache/options.hpp"
#include "store/repo_cache.hpp"

namespace hubcache {
// Shared by every "not in the cache" error so the advice is the same everywhere.
std::string not_cached_message(std::string_view repo, std::string_view file, const Options& options,
                               std::string_view why);

// The `hubcache download` command that fetches `file` of `repo` (the whole repo when
// `file` is empty) as `options` ask, ready to paste into a shell (util::shell_command):
// --repo-type, --revision, --cache-dir, --layout and --local-dir when they are not the
// defaults, and HF_HUB_OFFLINE=0 in front when the environment set offline mode.
std::string download_command(std::string_view repo, std::string_view file, const Options& options,
                             const std::filesystem::path& local_dir = {});

// The message for "the Hub cannot be reached and the cache lacks `what`": what was
// tried (the endpoint and why it failed), where the cache is, and the two ways
// forward (reach the Hub or a mirror; or fill a cache elsewhere, then copy or serve
// it). `command` is the download to run once one of them is done.
std::string unreachable_message(const hub::UnreachableError& e, std::string_view what,
                                const std::filesystem::path& cache_root, std::string_view command,
                                std::string_view detail = {});

// `error` (disk_full) with the command that shows what would free space in the cache
// at `cache_root`. Other errors are returned as they are.
Error with_free_space_advice(const Error& error, const std::filesystem::path& cache_root);
}  // namespace hubcache

namespace hubcache::transfer {

// hf_hub_download into the hub cache (reference §3.7): metadata HEAD, refs,
// lock, verified download, pointer. Returns the snapshot path.
std::filesystem::path fetch_online(const store::RepoCache& cache, std::string_view file, const Options& options);

// What a caller that puts many files into one repo lets each download skip.
struct BatchHints {
  // false: the caller listed blobs/ once (partials_in_blobs) and it holds no
  // partial of this etag, so the folder is not listed again for each file.
  bool look_for_partial = true;
  // false: blobs/ is not fsynced after each rename; the caller fsyncs it once,
  // after the batch. Each blob's bytes are still fsynced before its rename.
  bool sync_blobs_dir = true;
  // true: the caller holds the blob's download lock already (it tried it without
  // waiting, as the mirror does to follow another process's download instead).
  bool lock_held = false;
};

// Puts one file of a known commit into the cache without asking the Hub for its
// metadata again (the snapshot downloader has it from the tree listing). Sets
// `*downloaded` (when given) to whether this call moved the bytes: false when the
// blob was there, or appeared while it waited for the blob's lock.
std::filesystem::path download_file(const store::RepoCache& cache, std::string_view file, const std::string& commit,
                                    const hub::FileMetadata& meta, const Options& options, const BatchHints& hints = {},
                                    bool* downloaded = nullptr);

// The etags that have a partial download (`<etag>.<8hex>.incomplete`) in `blobs`.
std::set<std::string> partials_in_blobs(const std::filesystem::path& blobs);

// Streams meta.location into `dest` verified (size + hash named by meta.etag), then
// renames it into place. Temp files sit next to `dest`; partials resume across runs.
void download_to_path(const hub::Context& ctx, const hub::FileMetadata& meta, const std::filesystem::path& dest,
                      const Options& options);

// Downloads <root>/<repo>/<file> for Layout::flat (temp file + verified rename).
std::filesystem::path download_flat(const std::filesystem::path& root, std::string_view repo,
                                    std::string_view file, const Options& options);

}  // namespace hubcache::transfer
