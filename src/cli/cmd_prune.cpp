// hubcache prune: delete detached revisions, stale .incomplete files and the temp
// files of writes a kill interrupted.
#include <iostream>

#include "admin/confirm.hpp"
#include "cli/command.hpp"
#include "hubcache/admin.hpp"
#include "hubcache/cache.hpp"

namespace hubcache::cli {
namespace {

struct PruneArgs {
  std::string cache_dir;
  bool dry_run = false;
  bool yes = false;
};

int run(const PruneArgs& args) {
  Options o;
  o.cache_dir = args.cache_dir;
  auto report = admin::scan_cache(resolve_cache_root(o));
  auto plan = admin::plan_prune(report);
  return admin::confirm_and_execute(plan,
                                    {args.dry_run, args.yes,
                                     "Nothing to prune: no detached revision, no stale "
                                     "incomplete download and no leftover temp file."},
                                    std::cout, std::cerr);
}

Registrar reg{{"prune", "Delete detached revisions (no refs) and stale .incomplete downloads", 42,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<PruneArgs>();
                 sub.add_flag("--dry-run", args->dry_run, "Show what would be deleted, delete nothing");
                 sub.add_flag("-y,--yes", args->yes, "Do not ask for confirmation");
                 sub.add_option("--cache-dir", args->cache_dir, "Cache root (default: HF_HUB_CACHE, ...)");
                 return [args] { return run(*args); };
               }}};

}  // namespace
}  // namespace hubcache::cli
