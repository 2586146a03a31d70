// scan_cache: Python's scan_cache_dir rules over raw POSIX calls.
//
// std::filesystem costs several stats per entry; a big cache has tens of
// thousands of snapshot links, so this walks with opendir/readdir (d_type),
// readlink and one lstat per distinct blob (memoised), which keeps a
// 10,000-file cache well under a second.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "hubcache/admin.hpp"
#include "hubcache/error.hpp"
#include "layout/naming.hpp"
#include "util/fs.hpp"

namespace hubcache::admin {

std::string CachedRepo::cache_id() const { return std::string(to_string(type)) + "/" + repo_id; }

std::size_t ScanReport::revision_count() const {
  std::size_t n = 0;
  for (const auto& r : repos) n += r.revisions.size();
  return n;
}

namespace {

struct Corrupted {
  std::string why;
};

TimePoint to_time(const timespec& ts) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                               std::chrono::nanoseconds(ts.tv_nsec)));
}

struct DirEntry {
  std::string name;
  unsigned char type;  // DT_*; resolved with lstat when the filesystem says DT_UNKNOWN
};

// Lists a directory; nullopt-like false with errno kept when it cannot be opened.
bool list_dir(const std::string& dir, std::vector<DirEntry>& out) {
  out.clear();
  DIR* d = ::opendir(dir.c_str());
  if (!d) return false;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    unsigned char t = e->d_type;
    if (t == DT_UNKNOWN) {
      struct stat st;
      std::string p = dir + "/" + e->d_name;
      if (::lstat(p.c_str(), &st) != 0) continue;  // vanished
      t = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }
    out.push_back({e->d_name, t});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return true;
}

struct BlobInfo {
  bool exists = false;
  bool is_link = false;
  std::string resolved;
  struct stat st {};
};

class RepoScanner {
 public:
  explicit RepoScanner(std::unordered_map<std::string, BlobInfo>& blobs) : blobs_(blobs) {}

  // Returns false when the repo folder vanished mid-scan (not a corruption).
  bool scan(const std::string& dir, const std::string& folder, CachedRepo& repo) {
    struct stat st;
    if (::lstat(dir.c_str(), &st) != 0) return false;
    if (!S_ISDIR(st.st_mode)) throw Corrupted{"Scan cache expects a directory but found a file."};
    auto parsed = layout::parse_repo_folder_name(folder);
    if (!parsed)
      throw Corrupted{
          "Repo path is not a valid HuggingFace cache directory: expected models--, datasets-- or "
          "spaces-- followed by the repo id."};
    repo.type = parsed->first;
    repo.repo_id = parsed->second;
    repo.path = dir;
    repo.last_accessed = to_time(st.st_atim);
    repo.last_modified = to_time(st.st_mtim);

    std::string snaps = dir + "/snapshots";
    std::vector<DirEntry> entries;
    if (!list_dir(snaps, entries)) {
      if (::access(dir.c_str(), F_OK) != 0) return false;
      throw Corrupted{"Snapshots dir doesn't exist in cached repo: " + snaps};
    }
    std::string refs_dir = dir + "/refs";
    if (::lstat(refs_dir.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) throw Corrupted{"Refs directory cannot be a file: " + refs_dir};
      read_refs(refs_dir, "", repo.refs);
    }
    for (const auto& e : entries) {
      if (e.type != DT_DIR) throw Corrupted{"Snapshots folder corrupted. Found a file: " + snaps + "/" + e.name};
      CachedRevision rev;
      rev.commit = e.name;
      rev.snapshot_path = snaps + "/" + e.name;
      if (!scan_revision(rev)) continue;  // vanished
      repo.revisions.push_back(std::move(rev));
    }
    std::set<std::string> commits;
    for (const auto& r : repo.revisions) commits.insert(r.commit);
    std::vector<std::string> missing;
    for (auto it = repo.refs.begin(); it != repo.refs.end();) {
      const auto& [ref, commit] = *it;
      if (commits.count(commit)) {
        ++it;
        continue;
      }
      // Look again before calling it corruption: a concurrent rm deletes the ref
      // then the snapshot, a download creates the snapshot then the ref.
      auto now = util::read_small_file(refs_dir + "/" + ref);
      std::string current = now ? *now : "";
      while (!current.empty() && std::isspace(static_cast<unsigned char>(current.back()))) current.pop_back();
      if (current != commit) {
        it = repo.refs.erase(it);
        continue;
      }
      CachedRevision rev;
      rev.commit = commit;
      rev.snapshot_path = snaps + "/" + commit;
      if (layout::is_commit_hash(commit) && scan_revision(rev)) {
        commits.insert(commit);
        repo.revisions.push_back(std::move(rev));
        ++it;
        continue;
      }
      missing.push_back(ref + " -> " + commit);
      ++it;
    }
    std::sort(repo.revisions.begin(), repo.revisions.end(),
              [](const CachedRevision& a, const CachedRevision& b) { return a.commit < b.commit; });
    if (!missing.empty()) {
      std::string list;
      for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
      throw Corrupted{"Reference(s) refer to missing commit hashes: " + list + "."};
    }
    for (auto& r : repo.revisions)
      for (const auto& [ref, commit] : repo.refs)
        if (commit == r.commit) r.refs.push_back(ref);

    std::unordered_set<std::string> unique;
    bool any = false;
    for (const auto& r : repo.revisions) {
      for (const auto& f : r.files) {
        if (!unique.insert(f.blob_path.native()).second) continue;
        repo.size += f.size;
        if (!any) {
          repo.last_accessed = f.last_accessed;
          repo.last_modified = f.last_modified;
          any = true;
        }
        repo.last_accessed = std::max(repo.last_accessed, f.last_accessed);
        repo.last_modified = std::max(repo.last_modified, f.last_modified);
      }
    }
    repo.nb_files = unique.size();
    return true;
  }

 private:
  void read_refs(const std::string& dir, const std::string& prefix, std::map<std::string, std::string>& refs) {
    std::vector<DirEntry> entries;
    if (!list_dir(dir, entries)) return;
    for (const auto& e : entries) {
      std::string path = dir + "/" + e.name;
      std::string name = prefix.empty() ? e.name : prefix + "/" + e.name;
      if (e.type == DT_DIR) {
        read_refs(path, name, refs);
      } else if (auto content = util::read_small_file(path)) {
        std::string c = *content;
        while (!c.empty() && std::isspace(static_cast<unsigned char>(c.back()))) c.pop_back();
        refs[name] = c;
      }
    }
  }

  const BlobInfo& blob(const std::string& path) {
    auto it = blobs_.find(path);
    if (it != blobs_.end()) return it->second;
    BlobInfo info;
    if (::lstat(path.c_str(), &info.st) == 0) {
      info.exists = true;
      info.resolved = path;
      if (S_ISLNK(info.st.st_mode)) {
        info.is_link = true;
        char buf[PATH_MAX];
        if (::realpath(path.c_str(), buf) && ::stat(buf, &info.st) == 0)
          info.resolved = buf;
        else
          info.exists = false;
      }
    }
    return blobs_.emplace(path, std::move(info)).first->second;
  }

  bool scan_revision(CachedRevision& rev) {
    struct stat st;
    if (::stat(rev.snapshot_path.c_str(), &st) != 0) return false;
    rev.last_modified = to_time(st.st_mtim);
    rev.last_accessed = rev.last_modified;
    if (!walk(rev.snapshot_path.native(), "", rev)) return false;
    std::unordered_set<std::string> unique;
    bool any = false;
    for (const auto& f : rev.files) {
      if (!unique.insert(f.blob_path.native()).second) continue;
      rev.size += f.size;
      auto used = std::max(f.last_accessed, f.last_modified);
      if (!any) {
        rev.last_modified = f.last_modified;
        rev.last_accessed = used;
        any = true;
      }
      rev.last_modified = std::max(rev.last_modified, f.last_modified);
      rev.last_accessed = std::max(rev.last_accessed, used);
    }
    return true;
  }

  bool walk(const std::string& dir, const std::string& prefix, CachedRevision& rev) {
    std::vector<DirEntry> entries;
    if (!list_dir(dir, entries)) return prefix.empty() ? false : true;
    for (const auto& e : entries) {
      std::string path = dir + "/" + e.name;
      std::string name = prefix.empty() ? e.name : prefix + "/" + e.name;
      CachedFile f;
      f.name = name;
      f.file_path = path;
      if (e.type == DT_DIR) {
        walk(path, name, rev);
        continue;
      }
      if (e.type == DT_LNK) {
        char buf[PATH_MAX];
        ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
        if (n < 0) continue;  // vanished
        fs::path target(std::string(buf, static_cast<std::size_t>(n)));
        if (target.is_relative()) target = fs::path(dir) / target;
        std::string repo_blob = target.lexically_normal().native();
        const BlobInfo& b = blob(repo_blob);
        if (!b.exists) {
          struct stat self;
          if (::lstat(path.c_str(), &self) != 0) continue;  // the link itself vanished mid-scan
          throw Corrupted{"Blob missing (broken symlink): " + path};
        }
        if (S_ISDIR(b.st.st_mode)) continue;  // a link to a directory is not a file
        f.repo_blob = repo_blob;
        f.repo_blob_is_link = b.is_link;
        f.blob_path = b.resolved;
        f.size = static_cast<std::uint64_t>(b.st.st_size);
        f.last_accessed = to_time(b.st.st_atim);
        f.last_modified = to_time(b.st.st_mtim);
      } else {
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0) continue;  // vanished
        f.repo_blob = path;
        f.blob_path = path;
        f.size = static_cast<std::uint64_t>(st.st_size);
        f.last_accessed = to_time(st.st_atim);
        f.last_modified = to_time(st.st_mtim);
      }
      rev.files.push_back(std::move(f));
    }
    return true;
  }

  std::unordered_map<std::string, BlobInfo>& blobs_;
};

bool is_hex8(std::string_view s) { return s.size() == 8 && layout::is_hex(s); }

void scan_incomplete(const std::string& root, const std::string& folder, ScanReport& report) {
  std::string blobs = root + "/" + folder + "/blobs";
  std::vector<DirEntry> entries;
  if (!list_dir(blobs, entries)) return;
  static constexpr std::string_view kSuffix = ".incomplete";
  for (const auto& e : entries) {
    std::string_view name = e.name;
    if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix) continue;
    struct stat st;
    std::string path = blobs + "/" + e.name;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    std::string_view stem = name.substr(0, name.size() - kSuffix.size());
    auto dot = stem.rfind('.');
    if (dot != std::string_view::npos && is_hex8(stem.substr(dot + 1))) stem = stem.substr(0, dot);
    IncompleteFile inc;
    inc.path = path;
    inc.repo_folder = folder;
    inc.etag = std::string(stem);
    // What is on disk, not the apparent size: the engine sizes a temp file up front
    // (sparse), so a fresh partial of a 10 GB file would otherwise show as 10 GB.
    inc.size = std::min(static_cast<std::uint64_t>(st.st_size), static_cast<std::uint64_t>(st.st_blocks) * 512);
    inc.last_modified = to_time(st.st_mtim);
    inc.lock_path = fs::path(root) / ".locks" / folder / (inc.etag + ".lock");
    report.incomplete_size += inc.size;
    report.incomplete.push_back(std::move(inc));
  }
}

}  // namespace

ScanReport scan_cache(const fs::path& root_in) {
  ScanReport report;
  report.root = root_in;
  struct stat st;
  if (::stat(root_in.c_str(), &st) != 0)
    throw Error(ErrorCode::not_cached, "Cache directory not found: " + root_in.string() +
                                           ". Set --cache-dir or HF_HUB_CACHE to scan another cache.");
  if (!S_ISDIR(st.st_mode))
    throw Error(ErrorCode::invalid_argument, "Scan cache expects a directory but found a file: " + root_in.string());
  std::string root = root_in.native();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::vector<DirEntry> entries;
  if (!list_dir(root, entries)) util::throw_errno(errno, "Cannot read cache directory " + root);

  std::unordered_map<std::string, BlobInfo> blobs;
  std::unordered_set<std::string> global_unique;
  static const std::set<std::string> kSkip = {".DS_Store", "Thumbs.db", "desktop.ini", ".locks", "CACHEDIR.TAG"};
  for (const auto& e : entries) {
    if (kSkip.count(e.name)) continue;
    std::string dir = root + "/" + e.name;
    // The shared blob store (reference §2.10) is not a repo; adopt it only when marked.
    if (e.name == "blobs" && ::access((dir + "/.huggingface-shared-blobs").c_str(), F_OK) == 0) continue;
    if (e.type == DT_DIR) scan_incomplete(root, e.name, report);
    CachedRepo repo;
    try {
      if (!RepoScanner(blobs).scan(dir, e.name, repo)) continue;
    } catch (const Corrupted& c) {
      report.warnings.push_back(dir + ": " + c.why);
      continue;
    }
    for (const auto& r : repo.revisions)
      for (const auto& f : r.files)
        if (global_unique.insert(f.blob_path.native()).second) report.size += f.size;
    report.repos.push_back(std::move(repo));
  }
  std::sort(report.repos.begin(), report.repos.end(),
            [](const CachedRepo& a, const CachedRepo& b) { return a.cache_id() < b.cache_id(); });
  return report;
}

}  // namespace hubcache::admin
