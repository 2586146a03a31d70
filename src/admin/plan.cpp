// Delete plans (rm, prune, gc) and their execution, after Python's
// DeleteCacheStrategy (reference §6.3) plus live-download protection: a blob or
// .incomplete file is deleted only while its download lock can be taken.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>

#include "hubcache/admin.hpp"
#include "hubcache/error.hpp"
#include "layout/naming.hpp"
#include "store/repo_cache.hpp"

namespace hubcache::admin {
namespace {

// Holds flock(LOCK_EX) on an existing lock file for as long as it lives, so no
// download of that etag can start while we delete. A lock file that does not
// exist means no download of that etag has ever begun here.
class TryLock {
 public:
  explicit TryLock(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd_ < 0) return;
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) busy_ = true;
  }
  ~TryLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }
  TryLock(const TryLock&) = delete;
  TryLock& operator=(const TryLock&) = delete;
  bool busy() const { return busy_; }

 private:
  int fd_ = -1;
  bool busy_ = false;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Every repo blob a snapshot of `repo_dir` links to right now (first hop, lexically normal).
std::unordered_set<std::string> linked_blobs(const fs::path& repo_dir) {
  std::unordered_set<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(repo_dir / "snapshots", ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code lec;
    if (!it->is_symlink(lec)) continue;
    auto target = fs::read_symlink(it->path(), lec);
    if (lec) continue;
    if (target.is_relative()) target = it->path().parent_path() / target;
    out.insert(target.lexically_normal().native());
  }
  return out;
}

// Does any refs/** file of `repo_dir` hold `commit` right now?
bool ref_points_to(const fs::path& repo_dir, const std::string& commit) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(repo_dir / "refs", ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    std::ifstream in(it->path());
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!content.empty() && std::isspace(static_cast<unsigned char>(content.back()))) content.pop_back();
    if (content == commit) return true;
  }
  return false;
}

fs::path lock_for(const ScanReport& report, const CachedRepo& repo, const CachedFile& f) {
  return report.root / ".locks" / repo.path.filename() / (f.repo_blob.filename().string() + ".lock");
}

bool is_real_file(const CachedFile& f) { return f.repo_blob == f.file_path; }

std::string refs_label(const CachedRevision& r) {
  if (r.refs.empty()) return "detached";
  std::string s;
  for (const auto& ref : r.refs) s += (s.empty() ? "" : ", ") + ref;
  return s;
}

// Any download lock of the repo held right now?
bool repo_has_live_download(const ScanReport& report, const CachedRepo& repo) {
  std::error_code ec;
  fs::directory_iterator it(report.root / ".locks" / repo.path.filename(), ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec))
    if (store::FileLock::is_locked(it->path())) return true;
  return false;
}

using Selection = std::map<std::size_t, std::set<std::size_t>>;  // repo index -> revision indices

DeletePlan build(const ScanReport& report, const Selection& selected, DeletePlan plan) {
  plan.root = report.root;
  for (const auto& [ri, revs] : selected) {
    const CachedRepo& repo = report.repos[ri];
    bool all = revs.size() == repo.revisions.size();
    if (all && !repo_has_live_download(report, repo)) {
      std::set<std::string> seen;
      std::uint64_t bytes = 0;
      for (const auto& r : repo.revisions)
        for (const auto& f : r.files)
          if (seen.insert(f.repo_blob.native()).second && !f.repo_blob_is_link) bytes += f.size;
      plan.repos.push_back(repo.path);
      plan.repo_bytes.push_back(bytes);
      plan.expected_freed += bytes;
      ++plan.nb_repos;
      plan.entries.push_back(repo.cache_id() + " (whole repo, " + std::to_string(repo.revisions.size()) +
                             " revision(s), " + format_size(bytes) + ")");
      continue;
    }
    if (all) plan.warnings.push_back(repo.cache_id() + ": a download is in progress; deleting its revisions only.");
    std::set<std::string> kept;
    for (std::size_t i = 0; i < repo.revisions.size(); ++i)
      if (!revs.count(i))
        for (const auto& f : repo.revisions[i].files) kept.insert(f.repo_blob.native());
    std::set<std::string> planned;
    for (std::size_t i : revs) {
      const CachedRevision& rev = repo.revisions[i];
      std::uint64_t rev_bytes = 0;
      std::uint64_t snap_bytes = 0;
      for (const auto& f : rev.files) {
        if (is_real_file(f)) {
          // Deleted with the snapshot directory (#4639: counted, not deleted twice).
          snap_bytes += f.size;
          continue;
        }
        if (kept.count(f.repo_blob.native()) || !planned.insert(f.repo_blob.native()).second) continue;
        auto lock = lock_for(report, repo, f);
        if (store::FileLock::is_locked(lock)) {
          plan.warnings.push_back(f.repo_blob.string() + ": kept, a download of this blob is in progress.");
          continue;
        }
        std::uint64_t bytes = f.repo_blob_is_link ? 0 : f.size;
        plan.blobs.push_back(f.repo_blob);
        plan.blob_locks.push_back(lock);
        plan.blob_bytes.push_back(bytes);
        rev_bytes += bytes;
      }
      plan.snapshots.push_back(rev.snapshot_path);
      plan.snapshot_bytes.push_back(snap_bytes);
      for (const auto& ref : rev.refs) plan.refs.push_back(repo.path / "refs" / ref);
      ++plan.nb_revisions;
      plan.expected_freed += rev_bytes + snap_bytes;
      plan.entries.push_back(repo.cache_id() + "@" + rev.commit + " [" + refs_label(rev) + "] (" +
                             format_size(rev_bytes + snap_bytes) + ")");
    }
  }
  return plan;
}

void add_incomplete(const ScanReport& report, DeletePlan& plan) {
  for (const auto& inc : report.incomplete) {
    if (store::FileLock::is_locked(inc.lock_path)) {
      plan.warnings.push_back(inc.path.string() + ": kept, a download is writing it.");
      continue;
    }
    plan.incomplete.push_back(inc.path);
    plan.incomplete_locks.push_back(inc.lock_path);
    plan.incomplete_bytes.push_back(inc.size);
    plan.expected_freed += inc.size;
    plan.entries.push_back(inc.repo_folder + "/blobs/" + inc.path.filename().string() + " (incomplete, " +
                           format_size(inc.size) + ")");
  }
}

// A repo target: "model/org/name", "datasets/org/name", "hf://models/org/name", "hf://org/name".
std::optional<std::pair<RepoType, std::string>> parse_repo_target(const std::string& target) {
  std::string t = target;
  bool uri = t.rfind("hf://", 0) == 0;
  if (uri) t = t.substr(5);
  auto slash = t.find('/');
  std::optional<RepoType> type;
  std::string rest = t;
  if (slash != std::string::npos) {
    std::string head = lower(t.substr(0, slash));
    if (head == "model" || head == "models") type = RepoType::model;
    if (head == "dataset" || head == "datasets") type = RepoType::dataset;
    if (head == "space" || head == "spaces") type = RepoType::space;
    if (type) rest = t.substr(slash + 1);
  }
  if (!type && uri) type = RepoType::model;  // hf://org/name names a model, as in HfFileSystem
  if (!type || rest.empty()) return std::nullopt;
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  return std::make_pair(*type, rest);
}

}  // namespace

DeletePlan plan_rm(const ScanReport& report, const std::vector<std::string>& targets) {
  Selection selected;
  DeletePlan plan;
  for (const auto& target : targets) {
    std::string t = lower(target);
    if (layout::is_commit_hash(t)) {
      bool found = false;
      for (std::size_t ri = 0; ri < report.repos.size(); ++ri)
        for (std::size_t vi = 0; vi < report.repos[ri].revisions.size(); ++vi)
          if (report.repos[ri].revisions[vi].commit == t) {
            selected[ri].insert(vi);
            found = true;
          }
      if (!found) plan.warnings.push_back("Revision '" + target + "' not found in the cache.");
      continue;
    }
    auto repo = parse_repo_target(target);
    if (!repo)
      throw Error(ErrorCode::invalid_argument,
                  "Invalid target '" + target +
                      "': expected TYPE/ORG/NAME (e.g. model/gpt2), hf://models/ORG/NAME or a 40-hex revision.");
    bool found = false;
    for (std::size_t ri = 0; ri < report.repos.size(); ++ri) {
      const auto& r = report.repos[ri];
      if (r.type == repo->first && lower(r.repo_id) == lower(repo->second)) {
        auto& set = selected[ri];
        for (std::size_t vi = 0; vi < r.revisions.size(); ++vi) set.insert(vi);
        found = true;
      }
    }
    if (!found) plan.warnings.push_back("Repo '" + target + "' not found in the cache.");
  }
  return build(report, selected, std::move(plan));
}

namespace {

bool is_hex8(std::string_view s) {
  return s.size() == 8 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// `<name>.<8hex>.tmp`: util::atomic_write's and the store's temp names.
bool is_atomic_temp(std::string_view name) {
  if (name.size() < 14 || name.substr(name.size() - 4) != ".tmp") return false;
  const auto stem = name.substr(0, name.size() - 4);
  const auto dot = stem.rfind('.');
  return dot != std::string_view::npos && dot > 0 && is_hex8(stem.substr(dot + 1));
}

TimePoint mtime_of(const struct stat& st) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(st.st_mtim.tv_sec) +
                                                               std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
}

// The partial a resume journal belongs to ("<partial>.resume", "<partial>.resume.tmp").
std::optional<std::string> journal_owner(std::string_view name) {
  for (std::string_view suffix : {std::string_view(".resume"), std::string_view(".resume.tmp")})
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix) {
      auto owner = name.substr(0, name.size() - suffix.size());
      if (owner.size() > 11 && owner.substr(owner.size() - 11) == ".incomplete") return std::string(owner);
    }
  return std::nullopt;
}

void add_stale_temps(const ScanReport& report, TimePoint now, DeletePlan& plan) {
  std::size_t young = 0;
  auto consider = [&](const fs::path& path, const std::string& shown, const fs::path& lock) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return;
    if (lock.empty() && now - mtime_of(st) < kStaleTempAge) {
      ++young;
      return;
    }
    if (!lock.empty() && store::FileLock::is_locked(lock)) return;  // a live download's
    const auto bytes = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
    plan.temps.push_back(path);
    plan.temp_locks.push_back(lock);
    plan.temp_bytes.push_back(bytes);
    plan.expected_freed += bytes;
    plan.entries.push_back(shown + " (leftover of an interrupted write, " + format_size(bytes) + ")");
  };
  std::error_code ec;
  for (auto top = fs::directory_iterator(report.root, ec); !ec && top != fs::directory_iterator(); top.increment(ec)) {
    const std::string name = top->path().filename().string();
    if (is_atomic_temp(name)) {
      consider(top->path(), name, {});
      continue;
    }
    std::error_code dec;
    if (name == ".locks" || !top->is_directory(dec)) continue;
    // A shared blob store (reference §2.10) is not ours to tidy.
    if (name == "blobs" && fs::exists(top->path() / ".huggingface-shared-blobs", dec)) continue;
    const fs::path blobs = top->path() / "blobs";
    // refs/, snapshots/, trees/, .no_exist/ (symlinked folders are not followed).
    for (auto it = fs::recursive_directory_iterator(top->path(), fs::directory_options::skip_permission_denied, dec);
         !dec && it != fs::recursive_directory_iterator(); it.increment(dec)) {
      if (it->path() == blobs) {
        it.disable_recursion_pending();
        continue;
      }
      if (is_atomic_temp(it->path().filename().string()))
        consider(it->path(), it->path().lexically_relative(report.root).string(), {});
    }
    // blobs/ itself, which may be a symlink (a cache spread over disks).
    for (auto it = fs::directory_iterator(blobs, dec); !dec && it != fs::directory_iterator(); it.increment(dec)) {
      const std::string leaf = it->path().filename().string();
      const std::string shown = name + "/blobs/" + leaf;
      if (is_atomic_temp(leaf)) {
        consider(it->path(), shown, {});
      } else if (auto owner = journal_owner(leaf)) {
        std::error_code oec;
        if (fs::exists(fs::symlink_status(blobs / *owner, oec))) continue;  // goes with its partial, if stale
        // "<etag>.<8hex>.incomplete" or "<etag>.incomplete": the etag names the lock.
        std::string etag = owner->substr(0, owner->size() - 11);
        if (auto dot = etag.rfind('.'); dot != std::string::npos && is_hex8(etag.substr(dot + 1))) etag.resize(dot);
        consider(it->path(), shown, report.root / ".locks" / name / (etag + ".lock"));
      }
    }
  }
  if (young)
    plan.warnings.push_back(std::to_string(young) + " temp file(s) younger than " +
                            std::to_string(kStaleTempAge.count()) +
                            " minutes kept: a write may still be under way. Run prune again later.");
}

}  // namespace

DeletePlan plan_prune(const ScanReport& report, TimePoint now) {
  Selection selected;
  for (std::size_t ri = 0; ri < report.repos.size(); ++ri)
    for (std::size_t vi = 0; vi < report.repos[ri].revisions.size(); ++vi)
      if (report.repos[ri].revisions[vi].refs.empty()) selected[ri].insert(vi);
  DeletePlan plan = build(report, selected, {});
  add_incomplete(report, plan);
  add_stale_temps(report, now, plan);
  return plan;
}

namespace {
// When a revision was last used. A blob shared with other revisions of the repo
// says nothing about which of them was read, so only the revision's own blobs
// count; a revision made only of shared blobs falls back to all of them.
TimePoint last_used(const CachedRepo& repo, std::size_t index) {
  std::unordered_map<std::string, std::size_t> owners;
  for (const auto& r : repo.revisions) {
    std::set<std::string> mine;
    for (const auto& f : r.files)
      if (mine.insert(f.blob_path.native()).second) ++owners[f.blob_path.native()];
  }
  const auto& rev = repo.revisions[index];
  std::optional<TimePoint> own;
  for (const auto& f : rev.files) {
    if (owners[f.blob_path.native()] != 1) continue;
    auto t = std::max(f.last_accessed, f.last_modified);
    own = own ? std::max(*own, t) : t;
  }
  return own ? *own : rev.last_accessed;
}
}  // namespace

DeletePlan plan_gc(const ScanReport& report, const GcPolicy& policy) {
  if (!policy.max_size && !policy.older_than)
    throw Error(ErrorCode::invalid_argument, "gc needs a limit: --max-size SIZE or --older-than DURATION.");
  struct Candidate {
    std::size_t repo, rev;
    bool detached;
    TimePoint used;
  };
  std::vector<Candidate> candidates;
  DeletePlan plan;
  // How many revisions (over the whole cache) use each resolved blob; links into
  // the shared store free nothing here, so they are not counted.
  std::unordered_map<std::string, std::size_t> users;
  std::unordered_map<std::string, std::uint64_t> sizes;
  for (std::size_t ri = 0; ri < report.repos.size(); ++ri) {
    const auto& repo = report.repos[ri];
    for (std::size_t vi = 0; vi < repo.revisions.size(); ++vi) {
      const auto& rev = repo.revisions[vi];
      std::set<std::string> mine;
      bool locked = false, kept = false;
      for (const auto& f : rev.files) {
        if (!is_real_file(f) && store::FileLock::is_locked(lock_for(report, repo, f))) locked = true;
        if (policy.keep && policy.keep(f.repo_blob)) kept = true;
        if (f.repo_blob_is_link || !mine.insert(f.blob_path.native()).second) continue;
        ++users[f.blob_path.native()];
        sizes[f.blob_path.native()] = f.size;
      }
      if (locked) {
        plan.warnings.push_back(repo.cache_id() + "@" + rev.commit + ": kept, a download into it is in progress.");
        continue;
      }
      if (kept) {
        plan.warnings.push_back(repo.cache_id() + "@" + rev.commit + ": kept, it is in use.");
        continue;
      }
      candidates.push_back({ri, vi, rev.refs.empty(), last_used(repo, vi)});
    }
  }
  std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.detached != b.detached) return a.detached;
    return a.used < b.used;
  });
  std::uint64_t total = 0;
  for (const auto& [blob, size] : sizes) total += size;
  Selection selected;
  for (const auto& c : candidates) {
    bool evict = false;
    if (policy.older_than && policy.now - c.used > *policy.older_than) evict = true;
    if (policy.max_size && total > *policy.max_size) evict = true;
    if (!evict) continue;
    selected[c.repo].insert(c.rev);
    std::set<std::string> mine;
    for (const auto& f : report.repos[c.repo].revisions[c.rev].files) {
      if (f.repo_blob_is_link || !mine.insert(f.blob_path.native()).second) continue;
      if (--users[f.blob_path.native()] == 0) total -= f.size;
    }
  }
  return build(report, selected, std::move(plan));
}

DeletePlan::Result DeletePlan::execute() const {
  Result result;
  auto remove_tree = [&](const fs::path& p) -> bool {
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(p, ec))) {
      result.warnings.push_back(p.string() + ": already gone, skipped.");
      return false;
    }
    fs::remove_all(p, ec);
    if (ec) throw Error(ErrorCode::io, "Cannot delete " + p.string() + ": " + ec.message());
    return true;
  };
  for (std::size_t i = 0; i < repos.size(); ++i) {
    // Hold every download lock of the repo while it goes, so none can start meanwhile.
    std::vector<std::unique_ptr<TryLock>> locks;
    bool busy = false;
    std::error_code ec;
    fs::directory_iterator it(root / ".locks" / repos[i].filename(), ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      locks.push_back(std::make_unique<TryLock>(it->path()));
      busy = busy || locks.back()->busy();
    }
    if (busy) {
      result.warnings.push_back(repos[i].string() + ": kept, a download started in it; run again later.");
      continue;
    }
    if (remove_tree(repos[i])) result.freed += i < repo_bytes.size() ? repo_bytes[i] : 0;
  }
  for (const auto& ref : refs) {
    std::error_code ec;
    if (!fs::remove(ref, ec)) {
      if (ec) throw Error(ErrorCode::io, "Cannot delete " + ref.string() + ": " + ec.message());
      result.warnings.push_back(ref.string() + ": already gone, skipped.");
      continue;
    }
    // refs/pr/1 leaves refs/pr/ behind: remove empty parents up to refs/.
    for (auto dir = ref.parent_path(); dir.filename() != "refs" && fs::is_empty(dir, ec) && !ec;
         dir = dir.parent_path())
      fs::remove(dir, ec);
  }
  for (std::size_t i = 0; i < snapshots.size(); ++i) {
    // Our refs to it are gone by now; one that points to it anyway was written by a
    // download since the scan, and deleting the snapshot would leave that ref dangling.
    if (ref_points_to(snapshots[i].parent_path().parent_path(), snapshots[i].filename().string())) {
      result.warnings.push_back(snapshots[i].string() + ": kept, a download recorded a ref to it since the scan.");
      continue;
    }
    if (remove_tree(snapshots[i])) result.freed += i < snapshot_bytes.size() ? snapshot_bytes[i] : 0;
  }
  auto remove_locked = [&](const fs::path& p, const fs::path& lock, std::uint64_t bytes) {
    TryLock guard(lock);
    if (guard.busy()) {
      result.warnings.push_back(p.string() + ": kept, a download holds it.");
      return;
    }
    std::error_code ec;
    if (!fs::remove(p, ec)) {  // a symlink into the shared store: only the link goes
      if (ec) throw Error(ErrorCode::io, "Cannot delete " + p.string() + ": " + ec.message());
      result.warnings.push_back(p.string() + ": already gone, skipped.");
      return;
    }
    result.freed += bytes;
  };
  // Blobs, one repo and one batch at a time: hold the batch's download locks, look
  // at what the remaining snapshots link to *now*, and delete only what nothing
  // links to. A download links a pointer to a blob only while holding that blob's
  // lock, so a revision created after the scan can never be left dangling.
  std::map<fs::path, std::vector<std::size_t>> by_repo;
  for (std::size_t i = 0; i < blobs.size(); ++i) by_repo[blobs[i].parent_path().parent_path()].push_back(i);
  constexpr std::size_t kBatch = 256;  // flocks held at once (file descriptors)
  for (const auto& [repo_dir, indices] : by_repo) {
    for (std::size_t b = 0; b < indices.size(); b += kBatch) {
      std::vector<std::unique_ptr<TryLock>> guards;
      std::vector<std::size_t> batch;
      for (std::size_t k = b; k < std::min(indices.size(), b + kBatch); ++k) {
        const std::size_t i = indices[k];
        auto guard = std::make_unique<TryLock>(i < blob_locks.size() ? blob_locks[i] : fs::path());
        if (guard->busy()) {
          result.warnings.push_back(blobs[i].string() + ": kept, a download holds it.");
          continue;
        }
        guards.push_back(std::move(guard));
        batch.push_back(i);
      }
      if (batch.empty()) continue;
      const auto linked = linked_blobs(repo_dir);
      for (std::size_t i : batch) {
        if (linked.count(blobs[i].lexically_normal().native())) {
          result.warnings.push_back(blobs[i].string() + ": kept, a revision downloaded since the scan uses it.");
          continue;
        }
        std::error_code ec;
        if (!fs::remove(blobs[i], ec)) {  // a symlink into the shared store: only the link goes
          if (ec) throw Error(ErrorCode::io, "Cannot delete " + blobs[i].string() + ": " + ec.message());
          result.warnings.push_back(blobs[i].string() + ": already gone, skipped.");
          continue;
        }
        result.freed += i < blob_bytes.size() ? blob_bytes[i] : 0;
      }
    }
  }
  for (std::size_t i = 0; i < incomplete.size(); ++i) {
    remove_locked(incomplete[i], i < incomplete_locks.size() ? incomplete_locks[i] : fs::path(),
                  i < incomplete_bytes.size() ? incomplete_bytes[i] : 0);
    // What is named after a deleted partial (its resume sidecar, a half-written copy
    // of that sidecar) is useless without it.
    std::error_code ec;
    if (fs::exists(fs::symlink_status(incomplete[i], ec))) continue;
    const std::string prefix = incomplete[i].filename().string() + ".";
    for (auto& e : fs::directory_iterator(incomplete[i].parent_path(), ec))
      if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove(e.path(), ec);
  }
  for (std::size_t i = 0; i < temps.size(); ++i) {
    const fs::path lock = i < temp_locks.size() ? temp_locks[i] : fs::path();
    TryLock guard(lock);
    struct stat st {};
    if (::lstat(temps[i].c_str(), &st) != 0) continue;  // finished or tidied meanwhile
    // Still a leftover now? (A download of the journal's etag may have started since the plan.)
    if (guard.busy() || (lock.empty() && Clock::now() - mtime_of(st) < kStaleTempAge)) {
      result.warnings.push_back(temps[i].string() + ": kept, it is in use again.");
      continue;
    }
    std::error_code ec;
    if (fs::remove(temps[i], ec))
      result.freed += i < temp_bytes.size() ? temp_bytes[i] : 0;
    else if (ec)
      throw Error(ErrorCode::io, "Cannot delete " + temps[i].string() + ": " + ec.message());
  }
  return result;
}

}  // namespace hubcache::admin
