// Which cached revision a repo-level admin command means (internal to hubcache).
#pragma once

#include <string>

#include "store/repo_cache.hpp"

namespace hubcache::admin {

// `revision` (a 40-hex commit or a ref name) resolved through refs/; when empty,
// refs/main, else the only snapshot. Throws Error(not_cached) when nothing
// matches, Error(invalid_argument) when several snapshots make it ambiguous.
std::string choose_cached_commit(const store::RepoCache& repo, const std::string& revision);

}  // namespace hubcache::admin
