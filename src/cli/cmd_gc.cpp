// hubcache gc: evict least-recently-used revisions by size or age.
#include <iostream>

#include "admin/confirm.hpp"
#include "cli/command.hpp"
#include "hubcache/admin.hpp"
#include "hubcache/cache.hpp"

namespace hubcache::cli {
namespace {

struct GcArgs {
  std::string cache_dir;
  std::string max_size;
  std::string older_than;
  bool dry_run = false;
  bool yes = false;
};

int run(const GcArgs& args) {
  Options o;
  o.cache_dir = args.cache_dir;
  admin::GcPolicy policy;
  if (!args.max_size.empty()) policy.max_size = admin::parse_size(args.max_size);
  if (!args.older_than.empty()) policy.older_than = admin::parse_duration(args.older_than);
  auto report = admin::scan_cache(resolve_cache_root(o));
  auto plan = admin::plan_gc(report, policy);
  std::cout << "Cache holds " << admin::format_size(report.size) << " in " << report.revision_count()
            << " revision(s).\n";
  return admin::confirm_and_execute(plan, {args.dry_run, args.yes, "Nothing to evict: the cache is within limits."},
                                    std::cout, std::cerr);
}

Registrar reg{{"gc", "Evict least-recently-used revisions until the cache fits a size or age limit", 43,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<GcArgs>();
                 auto* size = sub.add_option("--max-size", args->max_size,
                                             "Evict until the cache is at most SIZE (e.g. 50G; powers of 1000)");
                 auto* age = sub.add_option("--older-than", args->older_than,
                                            "Evict revisions not used for DURATION (e.g. 30d; s m h d w mo y)");
                 auto* group = sub.add_option_group("limit");
                 group->add_option(size);
                 group->add_option(age);
                 group->require_option(1, 2);
                 sub.add_flag("--dry-run", args->dry_run, "Show what would be evicted, delete nothing");
                 sub.add_flag("-y,--yes", args->yes, "Do not ask for confirmation");
                 sub.add_option("--cache-dir", args->cache_dir, "Cache root (default: HF_HUB_CACHE, ...)");
                 return [args] { return run(*args); };
               }}};

}  // namespace
}  // namespace hubcache::cli
