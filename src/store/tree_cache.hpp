// trees/<commit>.json: huggingface_hub's cached tree listing (reference §2.11).
// Written only complete and in Python's format (indent 1, sorted keys, ASCII).
#pragma once

#include <optional>
#include <vector>

#include "hub/repo_api.hpp"
#include "store/repo_cache.hpp"

namespace hubcache::store {

std::optional<std::vector<hub::TreeFile>> read_tree_cache(const RepoCache& cache, const std::string& commit);
// Best effort (a read-only cache just skips it).
void write_tree_cache(const RepoCache& cache, const std::string& commit, const std::vector<hub::TreeFile>& files) noexcept;

}  // namespace hubcache::store
