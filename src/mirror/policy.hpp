// Which repos a mirror may serve: --allow / --deny patterns on repo ids.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hubcache/options.hpp"

namespace hubcache::mirror {

class RepoPolicy {
 public:
  // fnmatch(3) patterns without FNM_PATHNAME, so `*` crosses '/': "org/*", "*/bert-*",
  // "*". A pattern may name the repo type first ("datasets/org/*", "models/*"); without
  // one it matches every type.
  RepoPolicy(std::vector<std::string> allow, std::vector<std::string> deny);

  // nullopt when `repo_id` of `type` may be mirrored; otherwise why not, as a message a
  // client can show ("... is not mirrored here: it matches --deny 'org/*'").
  // A deny always wins; with allow patterns, only repos matching one are mirrored.
  std::optional<std::string> refusal(RepoType type, const std::string& repo_id) const;

 private:
  static bool matches(const std::string& pattern, RepoType type, const std::string& repo_id);
  std::vector<std::string> allow_, deny_;
};

}  // namespace hubcache::mirror
