// The seed API (hubcache/cache.hpp): cache_root, lookup, is_cached, path, fetch.
#include <cstdlib>

#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"
#include "store/repo_cache.hpp"
#include "transfer/download.hpp"
#include "util/fs.hpp"

namespace hubcache {

namespace fs = std::filesystem;

std::filesystem::path resolve_cache_root(const Options& options) {
  const Settings& settings = Settings::get();
  fs::path root;
  if (!options.cache_dir.empty()) {
    root = expand_user_and_vars(options.cache_dir.string(), [](const char* n) { return std::getenv(n); });
  } else if (options.layout == Layout::flat) {
    root = settings.user_cache / options.app_name;
  } else {
    root = settings.hub_cache;
  }
  // Python: Path(cache_dir).expanduser().resolve(): absolute, symlinks resolved,
  // so printed paths match the ones huggingface_hub prints. Resolving costs a
  // getcwd and a readlink per path component, more than the rest of a cache hit,
  // so the last answer for an absolute root is kept per thread (a relative one
  // depends on the working directory; a symlink in the cache path re-pointed while
  // the process runs is seen by new threads only).
  thread_local fs::path last_input, last_output;
  if (!last_input.empty() && root == last_input) return last_output;
  std::error_code ec;
  auto canonical = fs::weakly_canonical(fs::absolute(root, ec), ec);
  auto resolved = ec ? fs::absolute(root).lexically_normal() : canonical;
  if (root.is_absolute()) {
    // Copies first, then swaps that cannot throw: running out of memory half-way must not
    // pair this input with the previous output (found by the C API's allocation-failure test).
    fs::path input = root, output = resolved;
    last_input.swap(input);
    last_output.swap(output);
  }
  return resolved;
}

std::filesystem::path cache_root(const Options& options) {
  auto root = resolve_cache_root(options);
  util::make_dirs(root);
  return root;
}

namespace {

fs::path flat_path(const fs::path& root, std::string_view repo, std::string_view file) {
  layout::validate_repo_id(repo);
  layout::validate_filename(file);
  return root / std::string(repo) / std::string(file);
}

}  // namespace

CacheLookup lookup(std::string_view repo, std::string_view file, const Options& options) {
  auto root = resolve_cache_root(options);
  if (options.layout == Layout::flat) {
    CacheLookup out;
    auto p = flat_path(root, repo, file);
    if (util::is_regular_file(p)) {
      out.status = CacheLookup::Status::cached;
      out.path = std::move(p);
    }
    return out;
  }
  store::RepoCache cache(root, std::string(repo), options.repo_type);
  return cache.lookup(file, options.revision);
}

bool is_cached(std::string_view repo, std::string_view file, const Options& options) {
  return lookup(repo, file, options).status == CacheLookup::Status::cached;
}

std::optional<std::filesystem::path> path(std::string_view repo, std::string_view file,
                                          const Options& options) {
  auto root = resolve_cache_root(options);
  if (options.layout == Layout::flat) return flat_path(root, repo, file);
  store::RepoCache cache(root, std::string(repo), options.repo_type);
  layout::validate_filename(file);
  auto commit = cache.resolve_commit(options.revision);
  if (!commit) return std::nullopt;
  return cache.pointer_path(*commit, file);
}

std::optional<std::filesystem::path> snapshot_path(std::string_view repo, const Options& options) {
  auto root = resolve_cache_root(options);
  if (options.layout == Layout::flat) {
    layout::validate_repo_id(repo);
    return root / std::string(repo);
  }
  store::RepoCache cache(root, std::string(repo), options.repo_type);
  layout::validate_revision(options.revision);
  auto commit = cache.resolve_commit(options.revision);
  if (!commit) return std::nullopt;
  return cache.snapshot_dir(*commit);
}

std::string not_cached_message(std::string_view repo, std::string_view file, const Options& options,
                               std::string_view why) {
  std::string type_flag =
      options.repo_type == RepoType::model ? "" : " --repo-type " + std::string(to_string(options.repo_type));
  std::string rev_flag = options.revision == "main" ? "" : " --revision " + options.revision;
  std::string msg = "'" + std::string(file) + "' of " + std::string(to_string(options.repo_type)) + " '" +
                    std::string(repo) + "' at revision '" + options.revision + "' is not in the cache";
  if (!why.empty()) msg += " (" + std::string(why) + ")";
  msg += ". Run 'hubcache download " + std::string(repo) + " " + std::string(file) + type_flag + rev_flag +
         "' with network access";
  if (!options.cache_dir.empty()) msg += " --cache-dir " + options.cache_dir.string();
  msg += ", or check the cache root with 'hubcache env'.";
  return msg;
}

std::filesystem::path fetch(std::string_view repo, std::string_view file, const Options& options) {
  const bool offline = options.offline.value_or(Settings::get().offline);
  if (offline && options.force_download)
    throw Error(ErrorCode::invalid_argument, "Cannot force a download while offline (HF_HUB_OFFLINE is set).");
  auto root = resolve_cache_root(options);

  if (options.layout == Layout::flat) {
    auto p = flat_path(root, repo, file);
    if (!options.force_download && util::is_regular_file(p)) return p;
    if (offline) throw Error(ErrorCode::not_cached, not_cached_message(repo, file, options, "offline mode"));
    return transfer::download_flat(root, repo, file, options);
  }

  store::RepoCache cache(root, std::string(repo), options.repo_type);
  layout::validate_filename(file);
  layout::validate_revision(options.revision);

  // A commit that is already cached needs no network at all.
  if (!options.force_download && layout::is_commit_hash(options.revision)) {
    auto pointer = cache.pointer_path(options.revision, file);
    if (util::is_regular_file(pointer)) return pointer;
  }
  if (offline) {
    auto found = cache.lookup(file, options.revision);
    if (found.status == CacheLookup::Status::cached) return found.path;
    if (found.status == CacheLookup::Status::missing_upstream)
      throw Error(ErrorCode::entry_not_found, "'" + std::string(file) + "' does not exist in " +
                                                  std::string(to_string(options.repo_type)) + " '" +
                                                  std::string(repo) + "' at revision '" + options.revision +
                                                  "' (recorded in the cache's .no_exist; offline mode).");
    std::string why = found.commit.empty() && !layout::is_commit_hash(options.revision)
                          ? "offline mode; the cache has no refs/" + options.revision + " for this repo"
                          : "offline mode";
    throw Error(ErrorCode::not_cached, not_cached_message(repo, file, options, why));
  }
  return transfer::fetch_online(cache, file, options);
}

}  // namespace hubcache
