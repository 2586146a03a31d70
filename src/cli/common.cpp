#include <cstdio>
#include <iostream>

#include "cli/command.hpp"
#include "hubcache/error.hpp"

namespace hubcache::cli {

void add_repo_type_flag(CLI::App& sub, RepoArgs& args) {
  sub.add_option("--repo-type", args.repo_type, "Type of repo: model, dataset or space")
      ->check(CLI::IsMember({"model", "dataset", "space", "models", "datasets", "spaces"}))
      ->default_val("model");
}

void add_revision_flag(CLI::App& sub, RepoArgs& args) {
  sub.add_option("--revision", args.revision, "Branch, tag, refs/pr/N or commit hash")->default_val("main");
}

void add_cache_dir_flag(CLI::App& sub, RepoArgs& args) {
  sub.add_option("--cache-dir", args.cache_dir,
                 "Cache root (default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)");
}

void add_layout_flag(CLI::App& sub, RepoArgs& args) {
  sub.add_option("--layout", args.layout,
                 "Cache layout: hub (huggingface_hub's) or flat (<root>/<repo>/<file>)")
      ->check(CLI::IsMember({"hub", "flat"}))
      ->default_val("hub");
}

Options to_options(const RepoArgs& args) {
  Options o;
  o.revision = args.revision;
  auto type = parse_repo_type(args.repo_type);
  if (!type) throw Error(ErrorCode::invalid_argument, "Unknown repo type '" + args.repo_type + "'.");
  o.repo_type = *type;
  o.cache_dir = args.cache_dir;
  o.layout = args.layout == "flat" ? Layout::flat : Layout::hub;
  if (args.offline) o.offline = true;
  return o;
}

void add_format_flags(CLI::App& sub, Format& format) {
  sub.add_option_function<std::string>(
         "--format",
         [&format](const std::string& v) {
           format = v == "json" ? Format::json : v == "quiet" ? Format::quiet : Format::human;
         },
         "Output: human (default), json, or quiet (the bare result only)")
      ->check(CLI::IsMember({"human", "json", "quiet"}));
  sub.add_flag_callback("-q,--quiet", [&format] { format = Format::quiet; },
                        "Print only the result (same as --format quiet)");
}

int report_error(const std::exception& e) {
  std::fflush(stdout);
  if (auto* err = dynamic_cast<const Error*>(&e)) {
    std::cerr << "error: " << err->what() << "\n";
    return exit_code(err->code());
  }
  if (dynamic_cast<const std::bad_alloc*>(&e)) {
    std::cerr << "error: out of memory\n";
    return exit_code(ErrorCode::internal);
  }
  std::cerr << "error: " << e.what() << "\n";
  return exit_code(ErrorCode::internal);
}

}  // namespace hubcache::cli
