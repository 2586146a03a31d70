// Placeholder until the download engine (issue "Download on miss") lands: the
// online path reports clearly that this build cannot download yet.
#include "transfer/download.hpp"

#include "hubcache/error.hpp"

namespace hubcache::transfer {

std::filesystem::path fetch_online(const store::RepoCache& cache, std::string_view file, const Options& options) {
  throw Error(ErrorCode::not_cached,
              not_cached_message(cache.repo_id(), file, options, "this build cannot download yet"));
}

std::filesystem::path download_flat(const std::filesystem::path&, std::string_view repo, std::string_view file,
                                    const Options& options) {
  throw Error(ErrorCode::not_cached, not_cached_message(repo, file, options, "this build cannot download yet"));
}

}  // namespace hubcache::transfer
