#include "mirror/revisions.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include "hubcache/error.hpp"
#include "layout/naming.hpp"
#include "util/fs.hpp"

namespace hubcache::mirror {

namespace fs = std::filesystem;

Revisions::Revisions(std::chrono::seconds revalidate) : revalidate_(revalidate) {}

std::string Revisions::key(const store::RepoCache& cache, const std::string& a, const std::string& b) {
  return cache.root().string() + "\n" + cache.folder_name() + "\n" + a + "\n" + b;
}

std::optional<Revisions::Known> Revisions::lookup(const store::RepoCache& cache, const std::string& revision) const {
  if (layout::is_commit_hash(revision)) return Known{revision, true};
  {
    std::lock_guard lock(mutex_);
    if (auto it = refs_.find(key(cache, revision)); it != refs_.end())
      return Known{it->second.commit, Clock::now() - it->second.confirmed < revalidate_};
  }
  if (revision.empty() || revision == "HEAD") return std::nullopt;
  try {
    auto commit = cache.read_ref(revision);
    if (!commit) return std::nullopt;
    auto age = cache.ref_age(revision);
    return Known{*commit, age && *age < revalidate_};
  } catch (const Error&) {
    return std::nullopt;  // not a revision that can name a ref file
  }
}

void Revisions::learned(const store::RepoCache& cache, const std::string& revision, const std::string& commit) {
  if (!layout::is_commit_hash(commit) || layout::is_commit_hash(revision)) return;
  {
    std::lock_guard lock(mutex_);
    refs_[key(cache, revision)] = Ref{commit, Clock::now()};
  }
  if (revision.empty() || revision == "HEAD") return;
  try {
    cache.write_ref(revision, commit);  // also refreshes its mtime when unchanged
  } catch (const Error&) {
    // A read-only cache, or a revision that cannot be a file name: memory is enough.
  }
}

std::optional<FileFacts> Revisions::facts(const store::RepoCache& cache, const std::string& commit,
                                          const std::string& file) const {
  {
    std::lock_guard lock(mutex_);
    if (auto it = facts_.find(key(cache, commit, file)); it != facts_.end()) return it->second;
  }
  try {
    const fs::path pointer = cache.pointer_path(commit, file);
    std::error_code ec;
    if (!fs::is_symlink(pointer, ec)) return std::nullopt;  // a real file: its hash is not in its name
    const std::string name = fs::read_symlink(pointer, ec).filename().string();
    if (ec || !layout::is_hex(name) || (name.size() != 40 && name.size() != 64)) return std::nullopt;
    struct stat st {};
    if (::stat(pointer.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return FileFacts{name, static_cast<std::uint64_t>(st.st_size)};
  } catch (const Error&) {
    return std::nullopt;
  }
}

void Revisions::remember(const store::RepoCache& cache, const std::string& commit, const std::string& file,
                         const FileFacts& facts) {
  if (!layout::is_commit_hash(commit)) return;
  std::lock_guard lock(mutex_);
  if (facts_.size() >= kMaxFacts) facts_.clear();
  facts_[key(cache, commit, file)] = facts;
}

void Revisions::missing(const store::RepoCache& cache, const std::string& commit, const std::string& file) {
  if (!layout::is_commit_hash(commit)) return;
  try {
    cache.write_no_exist(commit, file);
    // An existing marker is confirmed again: its mtime is when.
    ::utimensat(AT_FDCWD, cache.no_exist_path(commit, file).c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
  } catch (const Error&) {
  }
}

bool Revisions::known_missing(const store::RepoCache& cache, const std::string& commit, const std::string& file) const {
  try {
    struct stat st {};
    if (::stat(cache.no_exist_path(commit, file).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
    const auto age = std::chrono::system_clock::now() -
                     std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec));
    return age < revalidate_;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace hubcache::mirror
