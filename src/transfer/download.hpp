// Downloads into the cache: the online half of hubcache::fetch.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "hub/hub_client.hpp"
#include "hubcache/options.hpp"
#include "store/repo_cache.hpp"

namespace hubcache {
// Shared by every "not in the cache" error so the advice is the same everywhere.
std::string not_cached_message(std::string_view repo, std::string_view file, const Options& options,
                               std::string_view why);
}  // namespace hubcache

namespace hubcache::transfer {

// hf_hub_download into the hub cache (reference §3.7): metadata HEAD, refs,
// lock, verified download, pointer. Returns the snapshot path.
std::filesystem::path fetch_online(const store::RepoCache& cache, std::string_view file, const Options& options);

// Puts one file of a known commit into the cache without asking the Hub for its
// metadata again (the snapshot downloader has it from the tree listing).
std::filesystem::path download_file(const store::RepoCache& cache, std::string_view file, const std::string& commit,
                                    const hub::FileMetadata& meta, const Options& options);

// Streams meta.location into `dest` verified (size + hash named by meta.etag), then
// renames it into place. Temp files sit next to `dest`; partials resume across runs.
void download_to_path(const hub::Context& ctx, const hub::FileMetadata& meta, const std::filesystem::path& dest,
                      const Options& options);

// Downloads <root>/<repo>/<file> for Layout::flat (temp file + verified rename).
std::filesystem::path download_flat(const std::filesystem::path& root, std::string_view repo,
                                    std::string_view file, const Options& options);

}  // namespace hubcache::transfer
