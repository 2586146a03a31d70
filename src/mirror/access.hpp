// Who may read what through the mirror, so that it never widens access.
//
// Each repo's visibility is learned from the upstream by an anonymous repo-info
// request: public, gated, or restricted (private, or missing: the Hub answers both
// with 401 to anonymous callers). It is kept `visibility_ttl` in memory and in a small
// file next to the repo's download locks (`.locks/<repo folder>/mirror-visibility`,
// where no tool looks), so a mirror restarted while the upstream is down still knows
// which cached repos are public.
//
// For gated and restricted repos a client's own token is checked against the
// upstream before anything from the cache is served; the answer (allowed, or the
// upstream's refusal to replay) is kept `decision_ttl`, keyed by the sha256 of the
// token and the repo. Tokens themselves are never stored, printed nor logged.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hubcache/options.hpp"

namespace hubcache::mirror {

enum class Visibility { open, gated, restricted };
const char* to_string(Visibility v);

// The upstream's answer to "may this token read this repo?".
struct Decision {
  bool allowed = false;
  long status = 0;                                           // the refusal's status (401, 403, 404)
  std::vector<std::pair<std::string, std::string>> headers;  // X-Error-Code, X-Error-Message, WWW-Authenticate
  std::string body;
};

class AccessCache {
 public:
  using Clock = std::chrono::steady_clock;
  AccessCache(std::filesystem::path root, std::chrono::seconds visibility_ttl, std::chrono::seconds decision_ttl);

  // Known and younger than visibility_ttl.
  std::optional<Visibility> visibility(RepoType type, const std::string& repo_id) const;
  // The last known visibility, however old: memory, else the file next to the locks.
  std::optional<Visibility> last_visibility(RepoType type, const std::string& repo_id) const;
  void set_visibility(RepoType type, const std::string& repo_id, Visibility v);

  std::optional<Decision> decision(const std::string& token, RepoType type, const std::string& repo_id) const;
  void remember(const std::string& token, RepoType type, const std::string& repo_id, const Decision& d);

  // sha256 of the token, hex: the only form in which a token is kept.
  static std::string token_key(const std::string& token);

 private:
  std::filesystem::path record_path(RepoType type, const std::string& repo_id) const;
  const std::filesystem::path root_;
  const std::chrono::seconds visibility_ttl_, decision_ttl_;
  mutable std::mutex mutex_;
  struct Seen {
    Visibility v;
    Clock::time_point at;
  };
  std::map<std::string, Seen> visibility_;
  struct Kept {
    Decision d;
    Clock::time_point at;
  };
  std::map<std::string, Kept> decisions_;
  static constexpr std::size_t kMaxDecisions = 100'000;
};

}  // namespace hubcache::mirror
