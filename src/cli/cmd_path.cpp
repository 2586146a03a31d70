// hubcache path REPO FILE: where a cached file is, offline.
#include <iostream>

#include "cli/command.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "transfer/download.hpp"

namespace hubcache::cli {
namespace {

struct PathArgs : RepoArgs {
  std::string file;
};

int run(const PathArgs& args) {
  Options options = to_options(args);
  auto found = lookup(args.repo, args.file, options);
  switch (found.status) {
    case CacheLookup::Status::cached:
      std::cout << found.path.string() << "\n";
      return 0;
    case CacheLookup::Status::missing_upstream:
      throw Error(ErrorCode::entry_not_found,
                  "'" + args.file + "' does not exist in " + std::string(to_string(options.repo_type)) + " '" +
                      args.repo + "' at revision '" + args.revision + "' (commit " + found.commit +
                      "), as recorded in the cache's .no_exist.");
    case CacheLookup::Status::unknown:
      break;
  }
  std::string why = found.commit.empty() && options.layout == Layout::hub
                        ? "the cache has no refs/" + args.revision + " for this repo"
                        : "";
  throw Error(ErrorCode::not_cached, not_cached_message(args.repo, args.file, options, why));
}

Registrar reg{{"path", "Print the local path of a cached file (offline; exit 3 if not cached)", 20,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<PathArgs>();
                 sub.add_option("repo", args->repo, "Repo id, e.g. org/name")->required();
                 sub.add_option("file", args->file, "Path of the file inside the repo")->required();
                 add_revision_flag(sub, *args);
                 add_repo_type_flag(sub, *args);
                 add_cache_dir_flag(sub, *args);
                 add_layout_flag(sub, *args);
                 return [args] { return run(*args); };
               }}};

}  // namespace
}  // namespace hubcache::cli
