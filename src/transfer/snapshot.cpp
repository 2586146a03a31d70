// hubcache::snapshot: whole-repo downloads (snapshot_download, reference §5).
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "hub/repo_api.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"
#include "store/tree_cache.hpp"
#include "transfer/download.hpp"
#include "transfer/local_metadata.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"

namespace hubcache {

namespace fs = std::filesystem;
using transfer::read_local_metadata;
using transfer::write_local_metadata;

namespace {

// ---- Python's fnmatch.fnmatchcase -------------------------------------------
//
// Written out rather than libc fnmatch(3) because the two disagree where users
// notice: Python matches code points, not bytes ('?' matches 'é'), takes "[^a]"
// as the set {'^', 'a'} (only '!' negates), never treats '\' as an escape, and
// drops the endpoints of an empty range ("[z-a]"). '*' crosses '/' in both.

// Code points of a UTF-8 string; a byte that is not valid UTF-8 maps to U+DC80+byte,
// as Python's surrogateescape does, so it only ever matches itself.
std::u32string code_points(std::string_view s) {
  std::u32string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1f) : len == 3 ? (b & 0x0f) : (b & 0x07);
    bool ok = len > 0 && i + static_cast<std::size_t>(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      ok = (c >> 6) == 2;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (!ok) {
      out.push_back(0xDC00 + b);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<std::size_t>(len);
  }
  return out;
}

struct GlobItem {
  enum Kind { literal, any_one, star, set } kind = literal;
  char32_t ch = 0;
  bool negated = false;
  std::vector<std::pair<char32_t, char32_t>> ranges;  // a single char is {c, c}; lo > hi never matches

  static GlobItem of(Kind kind, char32_t ch = 0) {
    GlobItem item;
    item.kind = kind;
    item.ch = ch;
    return item;
  }

  bool matches(char32_t c) const {
    if (kind == any_one) return true;
    if (kind == literal) return c == ch;
    bool in = false;
    for (const auto& [lo, hi] : ranges) in = in || (lo <= c && c <= hi);
    return in != negated;
  }
};

// fnmatch.translate's bracket parsing, step by step (including its chunking of
// '-' so that "a-c-e" is the range a..c plus '-' and 'e').
std::vector<GlobItem> compile_glob(const std::u32string& pat) {
  std::vector<GlobItem> items;
  const std::size_t n = pat.size();
  std::size_t i = 0;
  while (i < n) {
    const char32_t c = pat[i++];
    if (c == U'*') {
      if (items.empty() || items.back().kind != GlobItem::star) items.push_back(GlobItem::of(GlobItem::star));
      continue;
    }
    if (c == U'?') {
      items.push_back(GlobItem::of(GlobItem::any_one));
      continue;
    }
    if (c != U'[') {
      items.push_back(GlobItem::of(GlobItem::literal, c));
      continue;
    }
    std::size_t j = i;
    if (j < n && pat[j] == U'!') ++j;
    if (j < n && pat[j] == U']') ++j;
    while (j < n && pat[j] != U']') ++j;
    if (j >= n) {
      items.push_back(GlobItem::of(GlobItem::literal, U'['));
      continue;
    }
    GlobItem cls = GlobItem::of(GlobItem::set);
    std::u32string stuff = pat.substr(i, j - i);
    i = j + 1;
    std::vector<std::u32string> chunks;
    const bool bang = !stuff.empty() && stuff[0] == U'!';
    if (stuff.find(U'-') == std::u32string::npos) {
      chunks.push_back(stuff);
    } else {
      std::size_t start = 0, k = bang ? 2 : 1;
      for (;;) {
        k = k < stuff.size() ? stuff.find(U'-', k) : std::u32string::npos;
        if (k == std::u32string::npos) break;
        chunks.push_back(stuff.substr(start, k - start));
        start = k + 1;
        k += 3;
      }
      std::u32string last = stuff.substr(std::min(start, stuff.size()));
      if (!last.empty())
        chunks.push_back(last);
      else
        chunks.back() += U'-';
    }
    if (bang) {
      cls.negated = true;
      chunks.front().erase(0, 1);
    }
    // Adjacent chunks meet in a range; every other character stands for itself.
    for (std::size_t k = 0; k < chunks.size(); ++k) {
      const std::u32string& ch = chunks[k];
      std::size_t from = k > 0 ? 1 : 0;
      std::size_t to = ch.size() - (k + 1 < chunks.size() ? 1 : 0);
      if (k > 0) cls.ranges.push_back({chunks[k - 1].back(), ch.front()});
      for (std::size_t x = from; x < to && x < ch.size(); ++x) cls.ranges.push_back({ch[x], ch[x]});
    }
    items.push_back(std::move(cls));
  }
  return items;
}

bool glob_match(const std::vector<GlobItem>& items, const std::u32string& text) {
  std::size_t p = 0, t = 0;
  std::size_t star = std::string::npos, star_t = 0;
  while (t < text.size()) {
    if (p < items.size() && items[p].kind == GlobItem::star) {
      star = p++;
      star_t = t;
    } else if (p < items.size() && items[p].matches(text[t])) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < items.size() && items[p].kind == GlobItem::star) ++p;
  return p == items.size();
}

bool matches(const std::string& path, std::string pattern) {
  for (auto& c : pattern)
    if (c == '\\') c = '/';
  if (!pattern.empty() && pattern.back() == '/') pattern += '*';
  return glob_match(compile_glob(code_points(pattern)), code_points(path));
}

bool selected(const std::string& path, const SnapshotOptions& so) {
  if (!so.allow_patterns.empty()) {
    bool any = false;
    for (const auto& p : so.allow_patterns) any = any || matches(path, p);
    if (!any) return false;
  }
  for (const auto& p : so.ignore_patterns)
    if (matches(path, p)) return false;
  return true;
}

// ---- local_dir (huggingface_hub's _local_folder.py layout) -----------------

fs::path download_dir(const fs::path& local_dir) { return local_dir / ".cache/huggingface/download"; }
// The lock Python takes around a local_dir file (its metadata path with .lock for .metadata).
fs::path local_lock_path(const fs::path& local_dir, const std::string& file) {
  return download_dir(local_dir) / (file + ".lock");
}
// Partial downloads live under .cache/huggingface/download, never next to the user's files.
fs::path staging_path(const fs::path& local_dir, const std::string& file) {
  return download_dir(local_dir) / (file + ".part");
}
fs::path local_tree_path(const fs::path& local_dir, const std::string& commit) {
  return local_dir / ".cache/huggingface/trees" / (commit + ".json");
}

// Python's rule: the metadata counts only if the file was not modified after it was written.
std::optional<transfer::LocalMetadata> valid_local_metadata(const fs::path& local_dir, const std::string& file) {
  auto m = read_local_metadata(local_dir, file);
  if (!m) return std::nullopt;
  struct stat st;
  if (::stat((local_dir / file).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  if (static_cast<double>(st.st_mtime) - 1 > m->timestamp) return std::nullopt;
  return m;
}

bool local_up_to_date(const fs::path& local_dir, const hub::TreeFile& f) {
  auto m = valid_local_metadata(local_dir, f.path);
  return m && m->etag == f.etag();
}

void prepare_local_dir(const fs::path& local_dir) {
  auto meta = local_dir / ".cache/huggingface";
  util::make_dirs(meta);
  if (!fs::exists(meta / ".gitignore")) util::atomic_write(meta / ".gitignore", "*");
  store::write_cachedir_tag(meta);
}

// One file into local_dir (reference §5.3, steps 3 to 6), under the file's lock.
// Returns true when bytes came over the network.
bool fetch_local_file(const store::RepoCache& cache, const fs::path& local_dir, const hub::TreeFile& f,
                      const std::string& commit, const hub::FileMetadata& meta, const Options& options) {
  const fs::path dest = local_dir / f.path;
  const fs::path lock_path = local_lock_path(local_dir, f.path);
  util::make_dirs(lock_path.parent_path());
  store::FileLock lock(lock_path, options.cancel);
  if (!options.force_download) {
    if (auto m = valid_local_metadata(local_dir, f.path)) {
      if (m->etag == f.etag()) {
        if (m->commit != commit) write_local_metadata(local_dir, f.path, commit, f.etag());
        return false;
      }
    } else if (util::is_regular_file(dest)) {
      // No (valid) metadata but a file is there: keep it if it has the right bytes.
      // Python does this for sha256 etags; a git blob sha1 proves as much.
      util::HashKind kind;
      if (util::hash_kind_for_etag(f.etag(), kind)) {
        std::string have;
        try {
          have = util::hash_file(dest, kind);
        } catch (const Error&) {
        }
        if (have == f.etag()) {
          write_local_metadata(local_dir, f.path, commit, f.etag());
          return false;
        }
      }
    }
  }
  util::make_dirs(dest.parent_path());
  const fs::path staging = staging_path(local_dir, f.path);
  util::make_dirs(staging.parent_path());
  // A blob the cache already has for this content is copied, not downloaded again.
  fs::path cached;
  if (!options.force_download) {
    if (auto p = cache.pointer_path(commit, f.path); util::is_regular_file(p))
      cached = p;
    else if (auto b = cache.blob_path(f.etag()); util::is_regular_file(b))
      cached = b;
  }
  bool downloaded = false;
  if (!cached.empty()) {
    try {
      util::copy_file_atomically(cached, staging);
    } catch (const Error&) {
      cached.clear();  // download it instead
    }
  }
  if (cached.empty()) {
    Options pinned = options;
    pinned.revision = commit;
    transfer::download_to_path(hub::make_context(cache.repo_id(), f.path, pinned), meta, staging, options);
    downloaded = true;
  }
  if (::rename(staging.c_str(), dest.c_str()) != 0) {
    int err = errno;
    util::throw_errno(err, "Cannot move the download into " + dest.string());
  }
  write_local_metadata(local_dir, f.path, commit, f.etag());
  return downloaded;
}

// The commit an offline local_dir was filled from: refs/ of the main cache, the
// revision itself, else the one commit all its metadata files name.
std::optional<std::string> local_dir_commit(const store::RepoCache& cache, const fs::path& local_dir,
                                            const std::string& revision) {
  if (auto c = cache.resolve_commit(revision)) return c;
  std::set<std::string> commits;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(download_dir(local_dir), ec), end; !ec && it != end; it.increment(ec)) {
    const auto& p = it->path();
    if (p.extension() != ".metadata") continue;
    auto text = util::read_small_file(p);
    if (!text) continue;
    std::string c = text->substr(0, text->find('\n'));
    if (layout::is_commit_hash(c)) commits.insert(c);
  }
  if (commits.size() == 1) return *commits.begin();
  return std::nullopt;
}

bool has_user_files(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename() != ".cache") return true;
  return false;
}

// `unreachable`: the Hub could not be reached (else offline mode), for the advice.
SnapshotResult offline_snapshot(const store::RepoCache& cache, std::string_view repo, const Options& options,
                                const SnapshotOptions& so, std::string_view why,
                                const hub::UnreachableError* unreachable = nullptr) {
  SnapshotResult result;
  const bool local = !so.local_dir.empty();
  auto commit =
      local ? local_dir_commit(cache, so.local_dir, options.revision) : cache.resolve_commit(options.revision);
  Options online = options;
  online.offline.reset();
  const std::string command = download_command(repo, "", online, so.local_dir);
  auto fail = [&](const std::string& what) {
    if (unreachable && !local)
      return Error(ErrorCode::not_cached,
                   unreachable_message(*unreachable,
                                       std::string(to_string(options.repo_type)) + " '" + std::string(repo) +
                                           "' at revision '" + options.revision + "'",
                                       cache.root(), command, what));
    std::string msg = "Repo '" + std::string(repo) + "' at revision '" + options.revision + "' is not in the " +
                      (local ? "local dir " + so.local_dir.string() : "cache at " + cache.root().string()) + " (" +
                      std::string(why) + "; " + what + "). Run `" + command + "` with network access first.";
    return Error(ErrorCode::not_cached, msg);
  };
  if (local) {
    result.path = fs::absolute(so.local_dir);
    // Python returns a non-empty local_dir as it is; the commit may stay unknown.
    if (!has_user_files(result.path)) throw fail("the folder has no files");
    if (commit) result.commit = *commit;
  } else {
    if (!commit) throw fail("no refs/" + options.revision + " entry");
    result.commit = *commit;
    result.path = cache.snapshot_dir(*commit);
    std::error_code ec;
    if (!fs::is_directory(result.path, ec)) throw fail("no snapshot folder for commit " + *commit);
  }
  if (result.commit.empty()) return result;
  auto tree = local ? store::read_tree_file(local_tree_path(so.local_dir, result.commit))
                    : store::read_tree_cache(cache, result.commit);
  if (tree) {
    std::size_t missing = 0;
    std::string example;
    for (const auto& f : *tree) {
      if (!selected(f.path, so)) continue;
      SnapshotFile sf{f.path, f.size, f.etag(), false, false};
      sf.cached = util::is_regular_file(result.path / f.path);
      if (!sf.cached && missing++ == 0) example = f.path;
      result.files.push_back(std::move(sf));
    }
    if (missing && unreachable && !local)
      throw Error(ErrorCode::not_cached,
                  unreachable_message(*unreachable,
                                      "all of " + std::string(to_string(options.repo_type)) + " '" + std::string(repo) +
                                          "' at revision '" + options.revision + "'",
                                      cache.root(), command,
                                      std::to_string(missing) + " file(s) of commit " + result.commit +
                                          " missing, e.g. '" + example + "'"));
    if (missing)
      throw Error(ErrorCode::not_cached, "The " + std::string(local ? "local dir" : "cached snapshot") + " of '" +
                                             std::string(repo) + "' at " + result.commit + " is incomplete: " +
                                             std::to_string(missing) + " file(s) missing (e.g. '" + example + "'; " +
                                             std::string(why) + "). Run `" + command + "` with network access.");
  }
  return result;
}

}  // namespace

static SnapshotResult snapshot_to_cache(std::string_view repo, const Options& options, const SnapshotOptions& so) {
  const bool offline = options.offline.value_or(Settings::get().offline);
  if (offline && options.force_download)
    throw Error(ErrorCode::invalid_argument, "Cannot force a download while offline (HF_HUB_OFFLINE is set).");
  if (options.layout == Layout::flat)
    throw Error(ErrorCode::invalid_argument,
                "Whole-repo downloads need the hub layout; name the files for --layout flat.");
  store::RepoCache cache(resolve_cache_root(options), std::string(repo), options.repo_type);
  layout::validate_revision(options.revision);
  if (offline) return offline_snapshot(cache, repo, options, so, "offline mode");

  const bool local = !so.local_dir.empty();
  hub::Context ctx = hub::make_context(repo, "", options);
  http::Client client;
  std::string commit = options.revision;
  // --max-age: a refs/ entry confirmed recently enough stands for the branch (no request).
  bool trusted_ref = false;
  if (!layout::is_commit_hash(commit) && options.max_age_seconds && !options.force_download && !local) {
    if (auto age = cache.ref_age(commit); age && age->count() <= *options.max_age_seconds)
      if (auto c = cache.read_ref(commit)) {
        commit = *c;
        trusted_ref = true;
      }
  }
  std::optional<std::vector<hub::TreeFile>> tree;
  try {
    if (!layout::is_commit_hash(commit)) commit = hub::resolve_revision(client, ctx);
    tree = local ? store::read_tree_file(local_tree_path(so.local_dir, commit)) : store::read_tree_cache(cache, commit);
    if (!tree) tree = hub::list_tree(client, ctx, commit);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::network || so.dry_run) throw;
    return offline_snapshot(cache, repo, options, so, std::string("the Hub is unreachable: ") + e.what(),
                            dynamic_cast<const hub::UnreachableError*>(&e));
  }

  SnapshotResult result;
  result.commit = commit;
  result.path = local ? fs::absolute(so.local_dir) : cache.snapshot_dir(commit);
  std::vector<const hub::TreeFile*> todo;
  for (const auto& f : *tree) {
    if (!selected(f.path, so)) continue;
    SnapshotFile sf{f.path, f.size, f.etag(), false, false};
    if (!local)
      sf.cached =
          util::is_regular_file(cache.pointer_path(commit, f.path)) || util::is_regular_file(cache.blob_path(f.etag()));
    else
      sf.cached = local_up_to_date(so.local_dir, f);
    sf.will_download = options.force_download || !sf.cached;
    result.files.push_back(sf);
    todo.push_back(&f);
  }
  if (so.on_plan) so.on_plan(result);
  if (so.dry_run) return result;

  if (!local) {
    store::write_tree_cache(cache, commit, *tree);
    // Not when trusted: refreshing the ref's mtime would make --max-age never expire.
    if (!layout::is_commit_hash(options.revision) && !trusted_ref) cache.write_ref(options.revision, commit);
    util::make_dirs(result.path);
  } else {
    prepare_local_dir(so.local_dir);
    store::write_tree_file(local_tree_path(so.local_dir, commit), *tree);
  }

  // blobs/ is listed once for partials to resume, not once per file, and fsynced
  // once at the end instead of after each blob.
  const std::set<std::string> partials = local ? std::set<std::string>{} : transfer::partials_in_blobs(cache.blobs_dir());
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr first_error;
  auto worker = [&] {
    for (;;) {
      std::size_t i = next++;
      if (i >= todo.size() || failed.load() || (options.cancel && options.cancel->load())) return;
      const hub::TreeFile& f = *todo[i];
      try {
        // Every file from /resolve/<commit>/: a branch moving meanwhile cannot mix revisions.
        hub::FileMetadata meta{commit, f.etag(), f.size,
                               layout::resolve_url(ctx.endpoint, options.repo_type, repo, commit, f.path)};
        bool moved = false;
        if (!local) {
          transfer::download_file(cache, f.path, commit, meta, options,
                                  {.look_for_partial = partials.count(f.etag()) > 0, .sync_blobs_dir = false}, &moved);
        } else if (!(moved = fetch_local_file(cache, so.local_dir, f, commit, meta, options)) &&
                   result.files[i].will_download && options.progress) {
          // Copied from the cache or found in place: account for it in the totals.
          options.progress(ProgressEvent{std::string(repo), f.path, f.size, f.size, true});
        }
        result.files[i].downloaded = moved;
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  const int workers = std::max(1, std::min<int>(so.max_workers, static_cast<int>(todo.size())));
  std::vector<std::thread> threads;
  for (int i = 1; i < workers; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (!local) util::fsync_dir(cache.blobs_dir());  // the renames of every blob published above
  if (first_error) std::rethrow_exception(first_error);
  if (options.cancel && options.cancel->load()) throw Error(ErrorCode::cancelled, "Snapshot download cancelled.");
  return result;
}

SnapshotResult snapshot(std::string_view repo, const Options& options, const SnapshotOptions& so) {
  try {
    return snapshot_to_cache(repo, options, so);
  } catch (const Error& e) {
    // gc frees the cache, not a local dir.
    if (e.code() != ErrorCode::disk_full || !so.local_dir.empty()) throw;
    throw with_free_space_advice(e, resolve_cache_root(options));
  }
}

}  // namespace hubcache
