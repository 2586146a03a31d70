// The seed API (hubcache/cache.hpp): cache_root, lookup, is_cached, path, fetch.
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"
#include "store/repo_cache.hpp"
#include "transfer/download.hpp"
#include "util/fs.hpp"
#include "util/shell.hpp"

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

std::string download_command(std::string_view repo, std::string_view file, const Options& options,
                             const std::filesystem::path& local_dir) {
  std::vector<std::string> words;
  // Offline mode set by the environment would make the pasted command fail the same way.
  if (!options.offline.has_value() && Settings::get().offline) {
    for (const char* name : {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"})
      if (const char* v = std::getenv(name); v && *v) words.push_back(std::string(name) + "=0");
  }
  words.insert(words.end(), {"hubcache", "download"});
  std::vector<std::string> flags;
  if (options.repo_type != RepoType::model)
    flags.insert(flags.end(), {"--repo-type", std::string(to_string(options.repo_type))});
  if (options.revision != "main") flags.insert(flags.end(), {"--revision", options.revision});
  if (!local_dir.empty()) flags.insert(flags.end(), {"--local-dir", local_dir.string()});
  if (!options.cache_dir.empty()) flags.insert(flags.end(), {"--cache-dir", options.cache_dir.string()});
  if (options.layout == Layout::flat) flags.insert(flags.end(), {"--layout", "flat"});
  std::vector<std::string> names{std::string(repo)};
  if (!file.empty()) names.emplace_back(file);
  // A name starting with '-' would read as a flag: flags first, then `--` ends them.
  const bool dash = (!repo.empty() && repo[0] == '-') || (!file.empty() && file[0] == '-');
  if (dash) {
    words.insert(words.end(), flags.begin(), flags.end());
    words.emplace_back("--");
    words.insert(words.end(), names.begin(), names.end());
  } else {
    words.insert(words.end(), names.begin(), names.end());
    words.insert(words.end(), flags.begin(), flags.end());
  }
  return util::shell_command(words);
}

std::string not_cached_message(std::string_view repo, std::string_view file, const Options& options,
                               std::string_view why) {
  std::string msg = "'" + std::string(file) + "' of " + std::string(to_string(options.repo_type)) + " '" +
                    std::string(repo) + "' at revision '" + options.revision + "' is not in the cache at " +
                    resolve_cache_root(options).string();
  if (!why.empty()) msg += " (" + std::string(why) + ")";
  Options online = options;
  online.offline.reset();
  msg += ". Run `" + download_command(repo, file, online) + "` with network access to download it.";
  return msg;
}

std::string unreachable_message(const hub::UnreachableError& e, std::string_view what,
                                const std::filesystem::path& cache_root, std::string_view command,
                                std::string_view detail) {
  const char* env = std::getenv("HF_ENDPOINT");
  const bool from_env = env && *env && e.endpoint() == Settings::get().endpoint;
  std::string sentence(what);
  if (!sentence.empty()) sentence[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(sentence[0])));
  return "Cannot reach the Hub at " + e.endpoint() + (from_env ? " (HF_ENDPOINT)" : "") + ": " + e.cause() + ". " +
         sentence + " is not in the cache at " + cache_root.string() + " either" +
         (detail.empty() ? "" : " (" + std::string(detail) + ")") +
         ". Two ways forward: let this machine reach the Hub (check the network and the proxy variables "
         "HTTPS_PROXY and NO_PROXY, or set HF_ENDPOINT to a mirror it can reach) and run `" +
         std::string(command) +
         "` again; or fill a cache on a machine that can reach the Hub (the same command there), then copy that "
         "cache to " +
         cache_root.string() +
         " and use it with HF_HUB_OFFLINE=1, or share it with `hubcache serve --host 0.0.0.0` there and set "
         "HF_ENDPOINT here to its URL.";
}

Error with_free_space_advice(const Error& error, const std::filesystem::path& cache_root) {
  if (error.code() != ErrorCode::disk_full) return error;
  return Error(ErrorCode::disk_full,
               std::string(error.what()) + " `" +
                   util::shell_command(
                       {"hubcache", "gc", "--max-size", "10G", "--dry-run", "--cache-dir", cache_root.string()}) +
                   "` shows which least-recently-used revisions would go to bring the cache down to 10 GB (then "
                   "the same without --dry-run).");
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
  try {
    return transfer::fetch_online(cache, file, options);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::disk_full) throw;
    throw with_free_space_advice(e, root);
  }
}

}  // namespace hubcache
