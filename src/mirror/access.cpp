#include "mirror/access.hpp"

#include "layout/naming.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"

namespace hubcache::mirror {

const char* to_string(Visibility v) {
  switch (v) {
    case Visibility::open:
      return "public";
    case Visibility::gated:
      return "gated";
    case Visibility::restricted:
      return "private";
  }
  return "private";
}

AccessCache::AccessCache(std::filesystem::path root, std::chrono::seconds visibility_ttl,
                         std::chrono::seconds decision_ttl)
    : root_(std::move(root)), visibility_ttl_(visibility_ttl), decision_ttl_(decision_ttl) {}

std::string AccessCache::token_key(const std::string& token) { return util::sha256_hex(token); }

std::filesystem::path AccessCache::record_path(RepoType type, const std::string& repo_id) const {
  return root_ / ".locks" / layout::repo_folder_name(repo_id, type) / "mirror-visibility";
}

std::optional<Visibility> AccessCache::visibility(RepoType type, const std::string& repo_id) const {
  std::lock_guard lock(mutex_);
  auto it = visibility_.find(layout::repo_folder_name(repo_id, type));
  if (it == visibility_.end() || Clock::now() - it->second.at >= visibility_ttl_) return std::nullopt;
  return it->second.v;
}

std::optional<Visibility> AccessCache::last_visibility(RepoType type, const std::string& repo_id) const {
  {
    std::lock_guard lock(mutex_);
    if (auto it = visibility_.find(layout::repo_folder_name(repo_id, type)); it != visibility_.end())
      return it->second.v;
  }
  auto text = util::read_small_file(record_path(type, repo_id));
  if (!text) return std::nullopt;
  if (text->rfind("public", 0) == 0) return Visibility::open;
  if (text->rfind("gated", 0) == 0) return Visibility::gated;
  return Visibility::restricted;
}

void AccessCache::set_visibility(RepoType type, const std::string& repo_id, Visibility v) {
  bool changed = true;
  {
    std::lock_guard lock(mutex_);
    auto& seen = visibility_[layout::repo_folder_name(repo_id, type)];
    changed = seen.at == Clock::time_point{} || seen.v != v;
    seen = Seen{v, Clock::now()};
  }
  if (!changed) return;
  try {
    util::make_dirs(record_path(type, repo_id).parent_path());
    util::atomic_write(record_path(type, repo_id), std::string(to_string(v)) + "\n");
  } catch (const std::exception&) {
    // A read-only cache: memory only.
  }
}

std::optional<Decision> AccessCache::decision(const std::string& token, RepoType type,
                                              const std::string& repo_id) const {
  std::lock_guard lock(mutex_);
  auto it = decisions_.find(token_key(token) + " " + layout::repo_folder_name(repo_id, type));
  if (it == decisions_.end() || Clock::now() - it->second.at >= decision_ttl_) return std::nullopt;
  return it->second.d;
}

void AccessCache::remember(const std::string& token, RepoType type, const std::string& repo_id, const Decision& d) {
  std::lock_guard lock(mutex_);
  if (decisions_.size() >= kMaxDecisions) decisions_.clear();
  decisions_[token_key(token) + " " + layout::repo_folder_name(repo_id, type)] = Kept{d, Clock::now()};
}

}  // namespace hubcache::mirror
