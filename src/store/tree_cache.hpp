// trees/<commit>.json: huggingface_hub's cached tree listing (reference §2.11).
// Written only complete and in Python's format (indent 1, sorted keys, ASCII).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/repo_api.hpp"
#include "store/repo_cache.hpp"

namespace hubcache::store {

// The files of a trees/<commit>.json text; nullopt for an unknown format or an entry this
// reader cannot use (the listing is then fetched again, as Python does).
std::optional<std::vector<hub::TreeFile>> parse_tree_cache(std::string_view json);
// The trees/<commit>.json text of a listing, in Python's format. Throws nlohmann::json's
// type_error for a path that is not valid UTF-8.
std::string format_tree_cache(const std::vector<hub::TreeFile>& files);

// <repo>/trees/<commit>.json of the cache.
std::optional<std::vector<hub::TreeFile>> read_tree_cache(const RepoCache& cache, const std::string& commit);
// Best effort (a read-only cache just skips it).
void write_tree_cache(const RepoCache& cache, const std::string& commit, const std::vector<hub::TreeFile>& files) noexcept;

// The same file at any path (a local_dir keeps it in .cache/huggingface/trees/<commit>.json).
// nullopt when absent or not understood: an unknown format_version or an invalid
// xet_hash makes Python ignore the file, and so do we.
std::optional<std::vector<hub::TreeFile>> read_tree_file(const fs::path& file);
void write_tree_file(const fs::path& file, const std::vector<hub::TreeFile>& files) noexcept;

}  // namespace hubcache::store
