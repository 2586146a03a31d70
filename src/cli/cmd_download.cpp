// hubcache download REPO [FILES...]: files into the cache; prints the local path.
#include <nlohmann/json.hpp>
#include <iostream>

#include "cli/command.hpp"
#include "cli/progress.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "transfer/download.hpp"

namespace hubcache::cli {
namespace {

struct DownloadArgs : RepoArgs {
  std::vector<std::string> files;
  Format format = Format::human;
  std::string token;
  std::int64_t max_age = -1;
  bool force = false;
  std::string max_speed;
};

// "16M" / "500K" / "1G" / plain bytes, per second.
std::uint64_t parse_speed(const std::string& text) {
  if (text.empty()) return 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string unit = end ? std::string(end) : "";
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!unit.empty() && unit.back() == 'B') unit.pop_back();
  double mult = unit.empty() ? 1 : unit == "K" ? 1e3 : unit == "M" ? 1e6 : unit == "G" ? 1e9 : -1;
  if (end == text.c_str() || v <= 0 || mult < 0)
    throw Error(ErrorCode::invalid_argument, "Invalid --max-speed '" + text + "': use bytes per second like 16M or 500K.");
  return static_cast<std::uint64_t>(v * mult);
}

void print_path(const std::filesystem::path& p, Format format) {
  if (format == Format::json)
    std::cout << nlohmann::json{{"path", p.string()}}.dump() << "\n";
  else
    std::cout << p.string() << "\n";
}

int run(const DownloadArgs& args) {
  Options options = to_options(args);
  const bool offline = options.offline.value_or(Settings::get().offline);
  if (!args.token.empty()) options.token = args.token;
  if (args.max_age >= 0) options.max_age_seconds = args.max_age;
  options.force_download = args.force;
  options.max_bytes_per_second = parse_speed(args.max_speed);
  ProgressBars bars(args.format != Format::human);
  options.progress = bars.callback();

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
                 sub.add_option("--token", args->token,
                                "Access token (prefer HF_TOKEN or the token file: process lists show arguments)");
                 sub.add_option("--max-age", args->max_age,
                                "Trust a cached branch ref confirmed less than this many seconds ago (no request)");
                 sub.add_flag("--force-download", args->force, "Download even if the file is cached");
                 sub.add_option("--max-speed", args->max_speed, "Bandwidth cap per file, e.g. 16M (bytes/s)");
                 add_format_flags(sub, args->format);
                 return [args] { return run(*args); };
               }}};

}  // namespace
}  // namespace hubcache::cli
