// hubcache download REPO [FILES...]: files or a whole repo into the cache (or a
// local folder); prints the local path (the file, or the snapshot folder).
#include <nlohmann/json.hpp>
#include <cstdio>
#include <iostream>

#include "cli/command.hpp"
#include "cli/progress.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"

namespace hubcache::cli {
namespace {

struct DownloadArgs : RepoArgs {
  std::vector<std::string> files;
  Format format = Format::human;
  std::string token;
  std::int64_t max_age = -1;
  bool force = false;
  std::string max_speed;
  std::vector<std::string> include, exclude;
  std::string local_dir;
  bool dry_run = false;
  int max_workers = 8;
  int connections = 8;
  bool revision_given = false, repo_type_given = false;
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

void print_dry_run(const SnapshotResult& r, Format format) {
  std::uint64_t bytes = 0;
  std::size_t count = 0;
  for (const auto& f : r.files)
    if (f.will_download) {
      bytes += f.size;
      ++count;
    }
  if (format == Format::json) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : r.files)
      files.push_back({{"file", f.path}, {"size", f.size}, {"will_download", f.will_download}});
    std::cout << nlohmann::json{{"commit", r.commit}, {"path", r.path.string()}, {"files", files}}.dump() << "\n";
    return;
  }
  std::cout << "[dry-run] Will download " << count << " files (out of " << r.files.size() << ") totalling "
            << format_size(static_cast<double>(bytes)) << ".\n";
  if (format == Format::human) {
    std::cout << "File  Size\n";
    for (const auto& f : r.files)
      std::cout << f.path << "  " << (f.will_download ? format_size(static_cast<double>(f.size)) : "-") << "\n";
  }
}

int run(DownloadArgs args) {
  // hf://[type/]org/name[@rev][/path]
  if (auto uri = layout::parse_hf_uri(args.repo)) {
    if (args.revision_given || args.repo_type_given)
      throw Error(ErrorCode::invalid_argument, "--revision and --repo-type cannot be combined with an hf:// URI.");
    args.repo = uri->repo_id;
    args.repo_type = std::string(to_string(uri->type));
    if (uri->revision) args.revision = *uri->revision;
    if (!uri->path.empty()) args.files.insert(args.files.begin(), uri->path);
  }
  // Names (and patterns) that escape the repo folder are refused before any request
  // or write, however many are given (several names become snapshot patterns).
  for (const auto& f : args.files) {
    std::string_view name = f;
    if (name.size() > 1 && name.back() == '/') name.remove_suffix(1);
    layout::validate_filename(name);
  }
  if (!args.local_dir.empty() && !args.cache_dir.empty())
    throw Error(ErrorCode::invalid_argument, "--cache-dir and --local-dir cannot be used together.");
  Options options = to_options(args);
  if (!args.token.empty()) options.token = args.token;
  if (args.max_age >= 0) options.max_age_seconds = args.max_age;
  options.force_download = args.force;
  options.max_bytes_per_second = parse_speed(args.max_speed);
  options.connections = args.connections;
  ProgressBars bars(args.format != Format::human);
  options.progress = bars.callback();

  // One plain file: hf_hub_download semantics, prints the file's path.
  const bool one_file = args.files.size() == 1 && args.files[0].back() != '/' &&
                        args.files[0].find_first_of("*?[") == std::string::npos;
  if (one_file && args.local_dir.empty() && !args.dry_run) {
    if (!args.include.empty() || !args.exclude.empty())
      std::cerr << "warning: --include/--exclude are ignored when file names are given\n";
    print_path(fetch(args.repo, args.files.front(), options), args.format);
    return 0;
  }

  SnapshotOptions so;
  so.max_workers = args.max_workers;
  so.local_dir = args.local_dir;
  so.dry_run = args.dry_run;
  if (!args.files.empty()) {
    for (const auto& f : args.files) so.allow_patterns.push_back(f.back() == '/' ? f + "*" : f);
    if (!args.include.empty() || !args.exclude.empty())
      std::cerr << "warning: --include/--exclude are ignored when file names are given\n";
  } else {
    so.allow_patterns = args.include;
    so.ignore_patterns = args.exclude;
  }
  so.on_plan = [&bars](const SnapshotResult& plan) {
    std::size_t n = 0;
    std::uint64_t bytes = 0;
    for (const auto& f : plan.files)
      if (f.will_download) {
        ++n;
        bytes += f.size;
      }
    bars.expect(n, bytes);
  };
  auto result = snapshot(args.repo, options, so);
  if (args.dry_run) {
    print_dry_run(result, args.format);
    return 0;
  }
  if (!args.files.empty() && result.files.empty())
    throw Error(ErrorCode::entry_not_found, "No file of '" + args.repo + "' at revision '" + args.revision +
                                                "' matches the names given.");
  // One plain file into --local-dir: its path, as `hf download` prints it.
  if (one_file) {
    print_path(result.path / args.files.front(), args.format);
    return 0;
  }
  if (args.format == Format::json) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : result.files)
      files.push_back({{"file", f.path}, {"size", f.size}, {"downloaded", f.downloaded}});
    std::cout << nlohmann::json{{"path", result.path.string()}, {"commit", result.commit}, {"files", files}}.dump()
              << "\n";
    return 0;
  }
  print_path(result.path, args.format);
  return 0;
}

Registrar reg{{"download", "Download files or a whole repo into the cache and print the local path", 10,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<DownloadArgs>();
                 sub.add_option("repo", args->repo, "Repo id (org/name) or hf://[datasets/]org/name[@rev][/path]")
                     ->required();
                 sub.add_option("files", args->files, "Files (or patterns, or dir/) to download (default: all)");
                 add_revision_flag(sub, *args);
                 add_repo_type_flag(sub, *args);
                 add_cache_dir_flag(sub, *args);
                 sub.add_option("--local-dir", args->local_dir,
                                "Write real files into this folder (huggingface_hub's local_dir format)");
                 add_layout_flag(sub, *args);
                 sub.add_option("--include", args->include, "Only files matching these patterns ('*' crosses '/')");
                 sub.add_option("--exclude", args->exclude, "Skip files matching these patterns");
                 sub.add_flag("--offline", args->offline, "Resolve from the cache only (same as HF_HUB_OFFLINE=1)");
                 sub.add_flag("--dry-run", args->dry_run, "Show what would be downloaded; write nothing");
                 sub.add_option("--max-workers", args->max_workers, "Files downloaded in parallel")
                     ->default_val(8)
                     ->check(CLI::Range(1, 64));
                 sub.add_option("--token", args->token,
                                "Access token (prefer HF_TOKEN or the token file: process lists show arguments)");
                 sub.add_option("--max-age", args->max_age,
                                "Trust a cached branch ref confirmed less than this many seconds ago (no request)");
                 sub.add_flag("--force-download", args->force, "Download even if the file is cached");
                 sub.add_option("--connections", args->connections,
                                "Connections for one large file (ranged requests; small files use one)")
                     ->default_val(8)
                     ->check(CLI::Range(1, 64));
                 sub.add_option("--max-speed", args->max_speed,
                                "Bandwidth cap for the whole command, all files and connections together, e.g. 16M "
                                "(bytes/s)");
                 add_format_flags(sub, args->format);
                 return [args, &sub] {
                   args->revision_given = sub.count("--revision") > 0;
                   args->repo_type_given = sub.count("--repo-type") > 0;
                   return run(*args);
                 };
               }}};

}  // namespace
}  // namespace hubcache::cli
