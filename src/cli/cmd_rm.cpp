// hubcache rm TARGET...: delete repos or revisions (Python's `hf cache rm`).
#include <iostream>

#include "admin/confirm.hpp"
#include "cli/command.hpp"
#include "hubcache/admin.hpp"
#include "hubcache/cache.hpp"

namespace hubcache::cli {
namespace {

struct RmArgs {
  std::vector<std::string> targets;
  std::string cache_dir;
  bool dry_run = false;
  bool yes = false;
};

int run(const RmArgs& args) {
  Options o;
  o.cache_dir = args.cache_dir;
  auto report = admin::scan_cache(resolve_cache_root(o));
  auto plan = admin::plan_rm(report, args.targets);
  return admin::confirm_and_execute(plan, {args.dry_run, args.yes, "Nothing to delete."}, std::cout, std::cerr);
}

Registrar reg{{"rm",
               "Delete cached repos or revisions (keeps blobs other revisions use)",
               41,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<RmArgs>();
                 sub.add_option("targets", args->targets,
                                "model/ORG/NAME (also dataset/, space/; case-insensitive), hf://models/ORG/NAME, "
                                "or a full 40-hex revision")
                     ->required();
                 sub.add_flag("--dry-run", args->dry_run, "Show what would be deleted, delete nothing");
                 sub.add_flag("-y,--yes", args->yes, "Do not ask for confirmation");
                 sub.add_option("--cache-dir", args->cache_dir, "Cache root (default: HF_HUB_CACHE, ...)");
                 return [args] { return run(*args); };
               },
               {"remove"}}};

}  // namespace
}  // namespace hubcache::cli
