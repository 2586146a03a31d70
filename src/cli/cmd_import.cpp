// hubcache import DIR --repo ORG/NAME: a folder into the cache as one commit.
#include <iostream>

#include "cli/command.hpp"
#include "hubcache/cache.hpp"
#include "store/importer.hpp"

namespace hubcache::cli {
namespace {

struct ImportArgs : RepoArgs {
  std::string dir;
  std::string commit;
  std::uint64_t lfs_threshold = 10'000'000;
  Format format = Format::human;
};

int run(const ImportArgs& args) {
  Options options = to_options(args);
  store::ImportOptions io;
  io.source = args.dir;
  io.repo_id = args.repo;
  io.type = options.repo_type;
  io.revision = args.revision;
  if (!args.commit.empty()) io.commit = args.commit;
  io.lfs_threshold = args.lfs_threshold;
  auto result = store::import_folder(cache_root(options), io);
  if (args.format == Format::human)
    std::cerr << "imported " << result.files << " files (" << result.bytes << " bytes) into "
              << to_string(options.repo_type) << " '" << args.repo << "' at " << args.revision << "\n";
  std::cout << result.commit << "\n";
  return 0;
}

Registrar reg{{"import", "Put a folder of files into the cache as one commit of a repo; prints the commit", 60,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<ImportArgs>();
                 sub.add_option("dir", args->dir, "Folder to import")->required();
                 sub.add_option("--repo", args->repo, "Repo id to import as, e.g. org/name")->required();
                 add_revision_flag(sub, *args);
                 add_repo_type_flag(sub, *args);
                 add_cache_dir_flag(sub, *args);
                 sub.add_option("--commit", args->commit, "Commit id to use (default: derived from the contents)");
                 sub.add_option("--lfs-threshold", args->lfs_threshold,
                                "Files larger than this many bytes are stored as LFS files")
                     ->default_val(10'000'000);
                 add_format_flags(sub, args->format);
                 return [args] { return run(*args); };
               }}};

}  // namespace
}  // namespace hubcache::cli
