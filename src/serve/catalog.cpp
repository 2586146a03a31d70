#include "serve/catalog.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "hubcache/error.hpp"
#include "layout/naming.hpp"
#include "store/importer.hpp"
#include "store/repo_cache.hpp"
#include "store/tree_cache.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"

namespace hubcache::serve {

using json = nlohmann::ordered_json;

namespace {

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::optional<std::string> real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return std::nullopt;
  return std::string(buf);
}

// oid, sha256 and pointer size from the blob name (sha256 for LFS, git sha1 otherwise).
void set_etag(FileInfo& f, const std::string& etag) {
  if (etag.size() == 64) {
    f.sha256 = etag;
    const std::string pointer =
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + etag + "\nsize " + std::to_string(f.size) + "\n";
    f.pointer_size = pointer.size();
    f.oid = util::git_blob_sha1_hex(pointer);
  } else {
    f.oid = etag;
  }
}

json last_commit(const std::string& commit, std::time_t date) {
  return {{"id", commit}, {"title", "Snapshot " + commit.substr(0, 7)}, {"date", iso_date(date)}};
}

}  // namespace

std::string iso_date(std::time_t t) {
  char buf[32];
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buf;
}

Catalog::Catalog(fs::path root) : root_(std::move(root)) {}

bool Catalog::inside_root(const fs::path& real) const {
  auto rel = real.lexically_relative(root_);
  return !rel.empty() && *rel.begin() != "..";
}

std::optional<std::string> Catalog::resolve_revision(const fs::path& repo, std::string rev) {
  if (rev == "HEAD") rev = "main";
  struct stat st {};
  if (layout::is_commit_hash(rev)) {
    if (::stat((repo / "snapshots" / rev).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return rev;
    return std::nullopt;
  }
  try {
    layout::validate_revision(rev);
  } catch (const Error&) {
    return std::nullopt;
  }
  const fs::path ref = repo / "refs" / rev;
  if (::stat(ref.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    const std::string key = ref.string();
    {
      std::lock_guard lock(mutex_);
      auto it = refs_.find(key);
      if (it != refs_.end() && it->second.mtime_ns == mtime_ns(st) && it->second.ino == st.st_ino &&
          it->second.size == static_cast<std::uint64_t>(st.st_size))
        return it->second.commit;
    }
    if (auto text = util::read_small_file(ref)) {
      std::string c = *text;
      while (!c.empty() && std::isspace(static_cast<unsigned char>(c.back()))) c.pop_back();
      struct stat snap {};
      if (layout::is_commit_hash(c) && ::stat((repo / "snapshots" / c).c_str(), &snap) == 0 && S_ISDIR(snap.st_mode)) {
        std::lock_guard lock(mutex_);
        refs_[key] =
            RefEntry{mtime_ns(st), static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size), c};
        return c;
      }
    }
  }
  if (rev.size() >= 7 && rev.size() < 40 && layout::is_hex(rev)) {
    std::optional<std::string> found;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(repo / "snapshots", ec)) {
      auto name = e.path().filename().string();
      if (name.rfind(rev, 0) == 0) {
        if (found) return std::nullopt;  // ambiguous
        found = name;
      }
    }
    return found;
  }
  return std::nullopt;
}

bool Catalog::still_current(const Snapshot& s) const {
  for (const auto& stamp : s.stamps) {
    struct stat st {};
    if (::stat(stamp.dir.c_str(), &st) != 0 || mtime_ns(st) != stamp.mtime_ns ||
        static_cast<std::uint64_t>(st.st_ino) != stamp.ino)
      return false;
  }
  return true;
}

std::shared_ptr<const Snapshot> Catalog::cached(const fs::path& repo, const std::string& commit) {
  const std::string key = repo.string() + "\n" + commit;
  std::shared_ptr<const Snapshot> s;
  {
    std::lock_guard lock(mutex_);
    auto it = snapshots_.find(key);
    if (it == snapshots_.end()) return nullptr;
    s = it->second;
  }
  const std::int64_t now = steady_ms();
  if (now - s->checked_ms.load(std::memory_order_relaxed) < 1000) return s;
  if (still_current(*s)) {
    s->checked_ms.store(now, std::memory_order_relaxed);
    return s;
  }
  forget(repo, commit);
  return nullptr;
}

void Catalog::forget(const fs::path& repo, const std::string& commit) {
  std::lock_guard lock(mutex_);
  snapshots_.erase(repo.string() + "\n" + commit);
}

std::string Catalog::real_file_etag(const fs::path& repo, const std::string& commit, const std::string& path,
                                    const std::string& real, std::uint64_t size, bool hash) {
  // trees/<commit>.json (Python's cached listing), when it lists the file with this size.
  const fs::path tree = repo / "trees" / (commit + ".json");
  struct stat st {};
  if (::stat(tree.c_str(), &st) == 0) {
    std::lock_guard lock(mutex_);
    auto& listing = listings_[tree.string()];
    if (!listing.loaded || listing.mtime != st.st_mtime) {
      listing = Listing{true, st.st_mtime, {}};
      if (auto name = layout::parse_repo_folder_name(repo.filename().string())) {
        try {
          if (auto files = store::read_tree_cache(store::RepoCache(root_, name->second, name->first), commit))
            for (auto& t : *files) listing.files.emplace(t.path, std::make_pair(t.size, t.etag()));
        } catch (const Error&) {
        }
      }
    }
    auto it = listing.files.find(path);
    if (it != listing.files.end() && it->second.first == size) {
      const std::string& e = it->second.second;
      if (layout::is_hex(e) && (e.size() == 40 || e.size() == 64)) return e;
    }
  }
  struct stat fst {};
  ::stat(real.c_str(), &fst);
  {
    std::lock_guard lock(mutex_);
    auto it = hashes_.find(real);
    if (it != hashes_.end() && it->second.size == size && it->second.mtime == fst.st_mtime) return it->second.etag;
  }
  if (!hash) return "";
  // Without a listing a file is LFS by its name or size, as hubcache import decides.
  const bool lfs = store::is_lfs_path(path) || size > 10'000'000;
  std::string etag = util::hash_file(real, lfs ? util::HashKind::sha256 : util::HashKind::git_blob_sha1);
  std::lock_guard lock(mutex_);
  hashes_[real] = Hashed{size, fst.st_mtime, etag};
  return etag;
}

FileInfo Catalog::complete(const fs::path& repo, const std::string& commit, FileInfo f) {
  if (f.hashed()) return f;
  set_etag(f, real_file_etag(repo, commit, f.path, f.real, f.size, true));
  if (f.lfs()) {
    std::lock_guard lock(mutex_);
    by_sha256_[f.sha256] = f.real;
  }
  return f;
}

std::shared_ptr<const Snapshot> Catalog::build(const fs::path& repo, const std::string& commit, bool hash_all) {
  auto s = std::make_shared<Snapshot>();
  s->commit = commit;
  const fs::path snap = repo / "snapshots" / commit;
  struct stat st {};
  if (::stat(snap.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return nullptr;
  s->date = st.st_mtime;
  s->stamps.push_back({snap.string(), mtime_ns(st), static_cast<std::uint64_t>(st.st_ino)});
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string full = it->path().string();
    struct stat lst {};
    if (::lstat(full.c_str(), &lst) != 0) continue;
    if (S_ISDIR(lst.st_mode)) {
      s->stamps.push_back({full, mtime_ns(lst), static_cast<std::uint64_t>(lst.st_ino)});
      continue;
    }
    std::string rel = it->path().lexically_relative(snap).generic_string();
    try {
      layout::validate_filename(rel);
    } catch (const Error&) {
      continue;
    }
    auto real = real_path(full);
    struct stat rst {};
    if (!real || !inside_root(*real) || ::stat(real->c_str(), &rst) != 0 || !S_ISREG(rst.st_mode)) continue;
    FileInfo f;
    f.path = std::move(rel);
    f.real = *real;
    f.size = static_cast<std::uint64_t>(rst.st_size);
    std::string etag;
    if (S_ISLNK(lst.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = ::readlink(full.c_str(), target, sizeof target - 1);
      if (n > 0) {
        auto name = fs::path(std::string(target, static_cast<std::size_t>(n))).filename().string();
        if (layout::is_hex(name) && (name.size() == 40 || name.size() == 64)) etag = name;
      }
    }
    if (etag.empty()) etag = real_file_etag(repo, commit, f.path, f.real, f.size, hash_all);
    if (etag.empty())
      ++s->unhashed;
    else
      set_etag(f, etag);
    s->files.push_back(std::move(f));
  }
  std::sort(s->files.begin(), s->files.end(), [](const FileInfo& a, const FileInfo& b) { return a.path < b.path; });
  std::set<std::string> dirs;
  for (std::size_t i = 0; i < s->files.size(); ++i) {
    const auto& p = s->files[i].path;
    s->by_path.emplace(p, i);
    for (auto slash = p.find('/'); slash != std::string::npos; slash = p.find('/', slash + 1))
      dirs.insert(p.substr(0, slash));
  }
  s->dirs.assign(dirs.begin(), dirs.end());
  if (s->unhashed == 0) finish_json(*s);
  s->checked_ms = steady_ms();
  std::lock_guard lock(mutex_);
  for (const auto& f : s->files)
    if (f.lfs()) by_sha256_[f.sha256] = f.real;
  std::shared_ptr<const Snapshot> out = s;
  snapshots_[repo.string() + "\n" + commit] = out;
  return out;
}

void Catalog::finish_json(Snapshot& s) const {
  const json lc = last_commit(s.commit, s.date);
  json siblings = json::array(), siblings_blobs = json::array();
  for (const auto& f : s.files) {
    json e = json::object();
    e["type"] = "file";
    e["oid"] = f.oid;
    e["size"] = f.size;
    if (f.lfs()) e["lfs"] = {{"oid", f.sha256}, {"size", f.size}, {"pointerSize", f.pointer_size}};
    e["path"] = f.path;
    s.file_json.push_back(e.dump());
    e["lastCommit"] = lc;
    s.file_json_expand.push_back(e.dump());
    siblings.push_back({{"rfilename", f.path}});
    json b = {{"rfilename", f.path}, {"size", f.size}, {"blobId", f.oid}};
    if (f.lfs()) b["lfs"] = {{"sha256", f.sha256}, {"size", f.size}, {"pointerSize", f.pointer_size}};
    siblings_blobs.push_back(std::move(b));
  }
  for (const auto& d : s.dirs) {
    json e = {{"type", "directory"},
              {"oid", util::git_blob_sha1_hex("tree " + s.commit + " " + d)},
              {"size", 0},
              {"path", d}};
    s.dir_json.push_back(e.dump());
    e["lastCommit"] = lc;
    s.dir_json_expand.push_back(e.dump());
  }
  s.siblings = siblings.dump();
  s.siblings_blobs = siblings_blobs.dump();
}

std::optional<std::string> Catalog::known_sha256(const std::string& sha) {
  std::string real;
  {
    std::lock_guard lock(mutex_);
    auto it = by_sha256_.find(sha);
    if (it == by_sha256_.end()) return std::nullopt;
    real = it->second;
  }
  if (util::is_regular_file(real)) return real;
  return std::nullopt;
}

std::optional<std::string> Catalog::find_sha256(const std::string& sha) {
  if (auto known = known_sha256(sha)) return known;
  std::error_code ec;
  auto shared = root_ / "blobs" / sha.substr(0, 2) / sha;
  if (util::is_regular_file(shared)) return shared.string();
  for (auto& e : fs::directory_iterator(root_, ec)) {
    auto blob = e.path() / "blobs" / sha;
    if (util::is_regular_file(blob)) {
      auto real = real_path(blob.string());
      if (real && inside_root(*real)) {
        std::lock_guard lock(mutex_);
        by_sha256_[sha] = *real;
        return real;
      }
    }
  }
  return std::nullopt;
}

}  // namespace hubcache::serve
