#include "mirror/target.hpp"

#include <set>

#include "hub/request_parts.hpp"
#include "layout/naming.hpp"

namespace hubcache::mirror {

std::string Target::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() || it->second.empty() ? "" : it->second.front();
}

bool Target::flag(const std::string& name) const {
  std::string v = param(name);
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "true" || v == "1";
}

std::map<std::string, std::vector<std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::vector<std::string>> out;
  for (auto& [k, v] : hub::parse_form(query)) out[std::move(k)].push_back(std::move(v));
  return out;
}

Target parse_target(std::string_view raw, bool cdn) {
  Target t;
  const auto q = raw.find('?');
  const std::string_view path = raw.substr(0, q);
  if (q != std::string_view::npos) t.query = std::string(raw.substr(q + 1));
  t.params = parse_query(t.query);
  auto segs = hub::split_path(path);
  if (cdn) {
    if (segs.size() == 1 && segs[0].size() == 64 && layout::is_hex(segs[0])) {
      t.kind = Target::Kind::blob;
      t.sha256 = segs[0];
      const std::string repo = t.param("repo");  // "models/org/name"
      const auto slash = repo.find('/');
      if (slash != std::string::npos) {
        if (auto type = parse_repo_type(repo.substr(0, slash))) {
          t.type = *type;
          t.repo_id = repo.substr(slash + 1);
        }
      }
      t.revision = t.param("rev");
      t.path = t.param("file");
    }
    return t;
  }
  if (segs.empty()) return t;
  if (segs[0] == "api") {
    if (segs.size() < 3) return t;
    auto type = parse_repo_type(segs[1]);
    if (!type || segs[1].back() != 's') return t;
    t.type = *type;
    static const std::set<std::string> actions{"revision",       "tree",    "paths-info",    "refs",
                                               "xet-read-token", "commits", "resolve-cache", "discussions",
                                               "preupload",      "commit"};
    std::size_t i;
    if (segs.size() >= 4 && !actions.count(segs[3])) {
      t.repo_id = layout::unquote(segs[2]) + "/" + layout::unquote(segs[3]);
      i = 4;
    } else {
      t.repo_id = layout::unquote(segs[2]);
      i = 3;
    }
    if (i >= segs.size()) {
      t.kind = Target::Kind::info;
      return t;
    }
    const std::string action = segs[i];
    if (action == "refs") {
      t.kind = i + 1 == segs.size() ? Target::Kind::refs : Target::Kind::other_api;
      return t;
    }
    if (action != "revision" && action != "tree" && action != "paths-info" && action != "xet-read-token") {
      t.kind = Target::Kind::other_api;
      return t;
    }
    if (i + 1 >= segs.size()) {
      t.kind = Target::Kind::other_api;
      return t;
    }
    t.revision = layout::unquote(segs[i + 1]);
    std::size_t next = i + 2;
    // Unencoded special refs (JS listFiles): refs/pr/N, refs/convert/X.
    if (t.revision == "refs" && segs.size() >= i + 4) {
      t.revision = "refs/" + layout::unquote(segs[i + 2]) + "/" + layout::unquote(segs[i + 3]);
      next = i + 4;
    }
    t.path = hub::join_decoded(segs, next);
    if (action == "revision")
      t.kind = t.path.empty() ? Target::Kind::info : Target::Kind::other_api;
    else if (action == "tree")
      t.kind = Target::Kind::tree;
    else if (action == "paths-info")
      t.kind = t.path.empty() ? Target::Kind::paths_info : Target::Kind::other_api;
    else
      t.kind = Target::Kind::xet_token;
    return t;
  }
  std::size_t i = 0;
  if (segs[0] == "datasets" || segs[0] == "spaces") {
    t.type = segs[0] == "datasets" ? RepoType::dataset : RepoType::space;
    i = 1;
  }
  if (i + 2 < segs.size() && segs[i + 2] == "resolve") {
    t.repo_id = layout::unquote(segs[i]) + "/" + layout::unquote(segs[i + 1]);
    i += 3;
  } else if (i + 1 < segs.size() && segs[i + 1] == "resolve") {
    t.repo_id = layout::unquote(segs[i]);
    i += 2;
  } else {
    return t;
  }
  if (i >= segs.size()) return t;
  t.revision = layout::unquote(segs[i]);
  t.path = hub::join_decoded(segs, i + 1);
  if (!t.path.empty()) t.kind = Target::Kind::resolve;
  return t;
}

}  // namespace hubcache::mirror
