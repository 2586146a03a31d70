// Repo-level Hub API: revision -> commit, and the recursive file listing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub_client.hpp"

namespace hubcache::hub {

struct TreeFile {
  std::string path;
  std::uint64_t size = 0;         // content size (LFS-resolved)
  std::string blob_id;            // git blob sha1 (of the LFS pointer for LFS files)
  std::string lfs_sha256;         // empty for regular files
  std::uint64_t lfs_size = 0;
  std::string xet_hash;  // 64 hex when the Hub stores the file in Xet; empty otherwise
  // The cache's blob name and the hash that verifies the content.
  const std::string& etag() const { return lfs_sha256.empty() ? blob_id : lfs_sha256; }
};

// GET /api/{type}s/{repo}/revision/{rev} -> "sha".
std::string resolve_revision(http::Client& client, const Context& ctx);

// The "sha" of a revision answer (JSON object) when it is a 40-hex commit, else nullopt.
std::optional<std::string> parse_revision_commit(const std::string& json);

// GET /api/{type}s/{repo}/tree/{commit}?recursive=true&expand=false, following
// `Link: <...>; rel="next"` pages. Files only; paths validated (escaping names
// from a server are refused with Error(integrity)). `max_retries` < 0: Settings'.
std::vector<TreeFile> list_tree(http::Client& client, const Context& ctx, const std::string& commit,
                                int max_retries = -1);

// The URL of rel="next" in a Link header, if any.
std::optional<std::string> next_link(const std::string& link_header);

// Parses one page of tree JSON (an array). Throws Error(http) on malformed JSON.
std::vector<TreeFile> parse_tree_page(const std::string& json);

}  // namespace hubcache::hub
