// The Hub routes a mirror answers, parsed from the raw request target (undecoded,
// so "refs%2Fpr%2F1" stays one segment; see the reference's "route on the raw path").
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "hubcache/options.hpp"

namespace hubcache::mirror {

struct Target {
  enum class Kind {
    none,        // not a Hub route
    resolve,     // /{prefix}{repo}/resolve/{rev}/{path}
    info,        // /api/{type}s/{repo}[/revision/{rev}]
    tree,        // /api/{type}s/{repo}/tree/{rev}[/{path}]
    paths_info,  // /api/{type}s/{repo}/paths-info/{rev}
    refs,        // /api/{type}s/{repo}/refs
    xet_token,   // /api/{type}s/{repo}/xet-read-token/{rev}
    other_api,   // another /api/{type}s/{repo}/... route
    blob,        // CDN: /{sha256}?repo=...&rev=...&file=...
  };
  Kind kind = Kind::none;
  RepoType type = RepoType::model;
  std::string repo_id;
  std::string revision;  // decoded; "" when the route names none (info: the default branch)
  std::string path;      // decoded file or folder path in the repo
  std::string sha256;    // blob
  std::string query;     // raw query string (after '?'), "" when none
  std::map<std::string, std::vector<std::string>> params;  // decoded query parameters

  std::string param(const std::string& name) const;
  bool flag(const std::string& name) const;  // true / True / 1
};

// Parses a target that arrived on the Hub listener (`cdn` false) or the CDN listener.
Target parse_target(std::string_view raw, bool cdn);

// "a=1&b=x%20y" -> {a: [1], b: ["x y"]} ('+' is a space).
std::map<std::string, std::vector<std::string>> parse_query(std::string_view query);

}  // namespace hubcache::mirror
