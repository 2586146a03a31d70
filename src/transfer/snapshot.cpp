// hubcache::snapshot: whole-repo downloads (snapshot_download, reference §5).
#include <fnmatch.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "hub/repo_api.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"
#include "store/tree_cache.hpp"
#include "transfer/download.hpp"
#include "util/fs.hpp"

namespace hubcache {

namespace fs = std::filesystem;

namespace {

// fnmatchcase semantics: libc fnmatch without FNM_PATHNAME lets '*' cross '/'
// and without FNM_PERIOD lets it match leading dots, as Python's does.
bool matches(const std::string& path, std::string pattern) {
  for (auto& c : pattern)
    if (c == '\\') c = '/';
  if (!pattern.empty() && pattern.back() == '/') pattern += '*';
  return ::fnmatch(pattern.c_str(), path.c_str(), 0) == 0;
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

struct LocalMetadata {
  std::string commit, etag;
  double timestamp = 0;
};

fs::path metadata_path(const fs::path& local_dir, const std::string& file) {
  return local_dir / ".cache/huggingface/download" / (file + ".metadata");
}

std::optional<LocalMetadata> read_local_metadata(const fs::path& local_dir, const std::string& file) {
  auto text = util::read_small_file(metadata_path(local_dir, file));
  if (!text) return std::nullopt;
  LocalMetadata m;
  auto a = text->find('\n');
  auto b = a == std::string::npos ? a : text->find('\n', a + 1);
  if (b == std::string::npos) return std::nullopt;
  m.commit = text->substr(0, a);
  m.etag = text->substr(a + 1, b - a - 1);
  m.timestamp = std::strtod(text->c_str() + b + 1, nullptr);
  return m;
}

void write_local_metadata(const fs::path& local_dir, const std::string& file, const std::string& commit,
                          const std::string& etag) {
  auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  char ts[64];
  std::snprintf(ts, sizeof ts, "%.6f", now);
  auto p = metadata_path(local_dir, file);
  util::make_dirs(p.parent_path());
  util::atomic_write(p, commit + "\n" + etag + "\n" + ts + "\n");
}

// Python's rule: metadata is valid when the file was not modified after it was written.
bool local_up_to_date(const fs::path& local_dir, const hub::TreeFile& f) {
  auto m = read_local_metadata(local_dir, f.path);
  if (!m || m->etag != f.etag()) return false;
  struct stat st;
  if (::stat((local_dir / f.path).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return static_cast<double>(st.st_mtime) - 1 <= m->timestamp;
}

void prepare_local_dir(const fs::path& local_dir) {
  auto meta = local_dir / ".cache/huggingface";
  util::make_dirs(meta);
  if (!fs::exists(meta / ".gitignore")) util::atomic_write(meta / ".gitignore", "*");
  store::write_cachedir_tag(meta);
}

SnapshotResult offline_snapshot(const store::RepoCache& cache, std::string_view repo, const Options& options,
                                const SnapshotOptions& so, std::string_view why) {
  SnapshotResult result;
  auto commit = cache.resolve_commit(options.revision);
  auto fail = [&](const std::string& what) {
    std::string msg = "Repo '" + std::string(repo) + "' at revision '" + options.revision + "' is not in the cache (" +
                      std::string(why) + "; " + what + "). Run 'hubcache download " + std::string(repo) +
                      (options.revision == "main" ? "" : " --revision " + options.revision) +
                      "' with network access first.";
    return Error(ErrorCode::not_cached, msg);
  };
  if (!commit) throw fail("no refs/" + options.revision + " entry");
  result.commit = *commit;
  result.path = so.local_dir.empty() ? cache.snapshot_dir(*commit) : fs::absolute(so.local_dir);
  std::error_code ec;
  if (!fs::is_directory(result.path, ec)) throw fail("no snapshot folder for commit " + *commit);
  if (auto tree = store::read_tree_cache(cache, *commit)) {
    std::size_t missing = 0;
    std::string example;
    for (const auto& f : *tree) {
      if (!selected(f.path, so)) continue;
      SnapshotFile sf{f.path, f.size, f.etag(), false, false};
      sf.cached = util::is_regular_file(result.path / f.path);
      if (!sf.cached && missing++ == 0) example = f.path;
      result.files.push_back(std::move(sf));
    }
    if (missing)
      throw Error(ErrorCode::not_cached, "The cached snapshot of '" + std::string(repo) + "' at " + *commit +
                                             " is incomplete: " + std::to_string(missing) + " file(s) missing (e.g. '" +
                                             example + "'; " + std::string(why) +
                                             "). Run the download again with network access.");
  }
  return result;
}

}  // namespace

SnapshotResult snapshot(std::string_view repo, const Options& options, const SnapshotOptions& so) {
  const bool offline = options.offline.value_or(Settings::get().offline);
  if (offline && options.force_download)
    throw Error(ErrorCode::invalid_argument, "Cannot force a download while offline (HF_HUB_OFFLINE is set).");
  if (options.layout == Layout::flat)
    throw Error(ErrorCode::invalid_argument, "Whole-repo downloads need the hub layout; name the files for --layout flat.");
  store::RepoCache cache(resolve_cache_root(options), std::string(repo), options.repo_type);
  layout::validate_revision(options.revision);
  if (offline) return offline_snapshot(cache, repo, options, so, "offline mode");

  hub::Context ctx = hub::make_context(repo, "", options);
  http::Client client;
  std::string commit = options.revision;
  std::optional<std::vector<hub::TreeFile>> tree;
  try {
    if (!layout::is_commit_hash(commit)) commit = hub::resolve_revision(client, ctx);
    tree = store::read_tree_cache(cache, commit);
    if (!tree) tree = hub::list_tree(client, ctx, commit);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::network || so.dry_run) throw;
    return offline_snapshot(cache, repo, options, so, std::string("the Hub is unreachable: ") + e.what());
  }

  SnapshotResult result;
  result.commit = commit;
  result.path = so.local_dir.empty() ? cache.snapshot_dir(commit) : fs::absolute(so.local_dir);
  std::vector<const hub::TreeFile*> todo;
  for (const auto& f : *tree) {
    if (!selected(f.path, so)) continue;
    SnapshotFile sf{f.path, f.size, f.etag(), false, false};
    if (so.local_dir.empty())
      sf.cached = util::is_regular_file(cache.pointer_path(commit, f.path)) ||
                  util::is_regular_file(cache.blob_path(f.etag()));
    else
      sf.cached = local_up_to_date(so.local_dir, f);
    sf.will_download = options.force_download || !sf.cached;
    result.files.push_back(sf);
    todo.push_back(&f);
  }
  if (so.on_plan) so.on_plan(result);
  if (so.dry_run) return result;

  if (so.local_dir.empty()) {
    store::write_tree_cache(cache, commit, *tree);
    if (!layout::is_commit_hash(options.revision)) cache.write_ref(options.revision, commit);
    util::make_dirs(result.path);
  } else {
    prepare_local_dir(so.local_dir);
  }

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
        hub::FileMetadata meta{commit, f.etag(), f.size,
                               layout::resolve_url(ctx.endpoint, options.repo_type, repo, commit, f.path)};
        if (so.local_dir.empty()) {
          transfer::download_file(cache, f.path, commit, meta, options);
        } else if (options.force_download || !local_up_to_date(so.local_dir, f)) {
          auto cached = cache.pointer_path(commit, f.path);
          auto dest = so.local_dir / f.path;
          util::make_dirs(dest.parent_path());
          if (!options.force_download && util::is_regular_file(cached)) {
            auto tmp = dest;
            tmp += ".hubcache-copy.tmp";
            fs::copy_file(cached, tmp, fs::copy_options::overwrite_existing);
            fs::rename(tmp, dest);
          } else {
            Options pinned = options;
            pinned.revision = commit;
            transfer::download_to_path(hub::make_context(repo, f.path, pinned), meta, dest, options);
          }
          write_local_metadata(so.local_dir, f.path, commit, f.etag());
        } else if (auto m = read_local_metadata(so.local_dir, f.path); m && m->commit != commit) {
          write_local_metadata(so.local_dir, f.path, commit, f.etag());
        }
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
  if (first_error) std::rethrow_exception(first_error);
  if (options.cancel && options.cancel->load()) throw Error(ErrorCode::cancelled, "Snapshot download cancelled.");
  return result;
}

}  // namespace hubcache
