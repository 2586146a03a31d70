#include "mirror/policy.hpp"

#include <fnmatch.h>

#include "layout/naming.hpp"

namespace hubcache::mirror {

RepoPolicy::RepoPolicy(std::vector<std::string> allow, std::vector<std::string> deny)
    : allow_(std::move(allow)), deny_(std::move(deny)) {}

bool RepoPolicy::matches(const std::string& pattern, RepoType type, const std::string& repo_id) {
  for (RepoType t : {RepoType::model, RepoType::dataset, RepoType::space}) {
    const std::string prefix = std::string(layout::api_collection(t)) + "/";
    if (pattern.rfind(prefix, 0) == 0) {
      if (t != type) return false;
      return ::fnmatch(pattern.substr(prefix.size()).c_str(), repo_id.c_str(), 0) == 0;
    }
  }
  return ::fnmatch(pattern.c_str(), repo_id.c_str(), 0) == 0;
}

std::optional<std::string> RepoPolicy::refusal(RepoType type, const std::string& repo_id) const {
  const std::string what = std::string(to_string(type)) + " '" + repo_id + "'";
  for (const auto& p : deny_)
    if (matches(p, type, repo_id)) return what + " is not mirrored by this server (it matches --deny '" + p + "').";
  if (allow_.empty()) return std::nullopt;
  for (const auto& p : allow_)
    if (matches(p, type, repo_id)) return std::nullopt;
  return what + " is not mirrored by this server (it matches no --allow pattern).";
}

}  // namespace hubcache::mirror
