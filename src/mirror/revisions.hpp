// What the mirror knows about revisions, files and missing files of upstream repos.
//
// A branch or tag is re-resolved upstream at most every `revalidate` seconds: its
// commit is kept in memory and in the cache's refs/<revision> (whose mtime says when
// it was last confirmed, as `hubcache download --max-age` reads it), so a restarted
// mirror, other tools reading the cache and an unreachable upstream all see the last
// known commit. Commits are immutable: what is known at a commit is kept. A file the
// upstream says does not exist at a commit is remembered as .no_exist/<commit>/<path>
// (Python's marker) for the same interval.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "store/repo_cache.hpp"

namespace hubcache::mirror {

// What a resolve answer needs to know about one file at one commit.
struct FileFacts {
  std::string etag;        // blob name: sha256 (LFS) or git blob sha1
  std::uint64_t size = 0;  // content size
  bool lfs() const { return etag.size() == 64; }
};

class Revisions {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Revisions(std::chrono::seconds revalidate);

  std::chrono::seconds revalidate() const { return revalidate_; }

  struct Known {
    std::string commit;
    bool fresh = false;  // confirmed less than `revalidate` ago (a commit always is)
  };
  // The commit `revision` names as far as the mirror knows: a 40-hex revision is its
  // own commit; otherwise memory, else refs/<revision> of the cache.
  std::optional<Known> lookup(const store::RepoCache& cache, const std::string& revision) const;
  // The upstream said `revision` is `commit` now: remembered, and written to
  // refs/<revision> when it names a ref file ("HEAD" and "" are kept in memory only).
  void learned(const store::RepoCache& cache, const std::string& revision, const std::string& commit);

  // Facts about a file at a commit: from memory, else from the cache's snapshot
  // (a symlink names its blob; the blob's size).
  std::optional<FileFacts> facts(const store::RepoCache& cache, const std::string& commit,
                                 const std::string& file) const;
  void remember(const store::RepoCache& cache, const std::string& commit, const std::string& file,
                const FileFacts& facts);

  // The upstream said `file` does not exist at `commit`: .no_exist marker (mtime now).
  void missing(const store::RepoCache& cache, const std::string& commit, const std::string& file);
  // Is `file` known missing at `commit`, confirmed less than `revalidate` ago?
  bool known_missing(const store::RepoCache& cache, const std::string& commit, const std::string& file) const;

 private:
  static std::string key(const store::RepoCache& cache, const std::string& a, const std::string& b = "");
  const std::chrono::seconds revalidate_;
  mutable std::mutex mutex_;
  struct Ref {
    std::string commit;
    Clock::time_point confirmed;
  };
  std::map<std::string, Ref> refs_;
  std::map<std::string, FileFacts> facts_;  // bounded: cleared when it grows past kMaxFacts
  static constexpr std::size_t kMaxFacts = 200'000;
};

}  // namespace hubcache::mirror
