// hubcache download REPO [FILES...]: files into the cache; prints the local path.
#include <nlohmann/json.hpp>
#include <iostream>

#include "cli/command.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "transfer/download.hpp"

namespace hubcache::cli {
namespace {

struct DownloadArgs : RepoArgs {
  std::vector<std::string> files;
  Format format = Format::human;
};

void print_path(const std::filesystem::path& p, Format format) {
  if (format == Format::json)
    std::cout << nlohmann::json{{"path", p.string()}}.dump() << "\n";
  else
    std::cout << p.string() << "\n";
}

int run(const DownloadArgs& args) {
  Options options = to_options(args);
  const bool offline = options.offline.value_or(Settings::get().offline);

  // One file: hf_hub_download semantics, prints the file's path in snapshots/.
  if (args.files.size() == 1) {
    print_path(fetch(args.repo, args.files.front(), options), args.format);
    return 0;
  }
  for (const auto& file : args.files) fetch(args.repo, file, options);
  if (args.files.empty() && !offline)
    throw Error(ErrorCode::invalid_argument,
                "Whole-repo downloads are not available in this build; name the files to download.");
  // Several files or the whole repo: prints the snapshot folder.
  auto snapshot = snapshot_path(args.repo, options);
  std::error_code ec;
  if (!snapshot || !std::filesystem::is_directory(*snapshot, ec)) {
    std::string why = snapshot ? "offline mode; no snapshot folder for that commit"
                               : "offline mode; the cache has no refs/" + args.revision + " for this repo";
    std::string msg = "Repo '" + args.repo + "' at revision '" + args.revision + "' is not in the cache (" + why +
                      "). Run 'hubcache download " + args.repo + "' with network access first.";
    throw Error(ErrorCode::not_cached, msg);
  }
  print_path(*snapshot, args.format);
  return 0;
}

Registrar reg{{"download", "Download files into the cache and print the local path (file or snapshot folder)", 10,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<DownloadArgs>();
                 sub.add_option("repo", args->repo, "Repo id, e.g. org/name")->required();
                 sub.add_option("files", args->files, "Files to download (default: the whole repo)");
                 add_revision_flag(sub, *args);
                 add_repo_type_flag(sub, *args);
                 add_cache_dir_flag(sub, *args);
                 add_layout_flag(sub, *args);
                 sub.add_flag("--offline", args->offline, "Resolve from the cache only (same as HF_HUB_OFFLINE=1)");
                 add_format_flags(sub, args->format);
                 return [args] { return run(*args); };
               }}};

}  // namespace
}  // namespace hubcache::cli
