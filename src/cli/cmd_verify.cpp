// hubcache verify REPO: hash every cached file of a revision against its blob
// name, offline. Online verification (against the Hub's tree listing, finding
// missing/extra files without trees/<commit>.json) plugs in by passing a
// TreeListing from the Hub client to admin::verify_revision.
#include <iostream>

#include "cli/command.hpp"
#include "hubcache/admin.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"

namespace hubcache::cli {
namespace {

struct VerifyArgs {
  std::string repo;
  std::string repo_type = "model";
  std::string revision;
  std::string cache_dir;
  bool all = false;
  bool fail_missing = false;
  bool fail_extra = false;
};

// Prints one report; returns whether it fails the command.
bool print(const admin::VerifyReport& r, const VerifyArgs& args) {
  using S = admin::FileCheck::Status;
  std::string id = std::string(to_string(r.type)) + "/" + r.repo_id + "@" + r.commit;
  for (const auto& f : r.files) {
    if (f.status == S::mismatch)
      std::cout << "MISMATCH  " << f.name << "  expected " << f.expected << ", got " << f.actual << "\n";
    else if (f.status == S::unreadable)
      std::cout << "UNREADABLE  " << f.name << "  " << f.detail << "\n";
    else if (f.status == S::unverifiable)
      std::cout << "UNVERIFIED  " << f.name << "  " << f.detail << "\n";
  }
  for (const auto& m : r.missing) std::cout << "MISSING  " << m << "\n";
  for (const auto& e : r.extra) std::cout << "EXTRA  " << e << "\n";
  std::size_t bad = r.count(S::mismatch) + r.count(S::unreadable);
  std::cout << id << ": " << r.count(S::ok) << " ok, " << r.count(S::mismatch) << " mismatch, "
            << r.count(S::unreadable) << " unreadable, " << r.count(S::unverifiable) << " unverifiable";
  if (r.has_listing)
    std::cout << ", " << r.missing.size() << " missing, " << r.extra.size() << " extra";
  else
    std::cout << " (no trees/" << r.commit << ".json: missing/extra files not checked)";
  std::cout << "\n";
  return bad > 0 || (args.fail_missing && !r.missing.empty()) || (args.fail_extra && !r.extra.empty());
}

int run(const VerifyArgs& args) {
  Options o;
  o.cache_dir = args.cache_dir;
  auto root = resolve_cache_root(o);
  bool failed = false;
  if (args.all) {
    if (!args.repo.empty() || !args.revision.empty())
      throw Error(ErrorCode::invalid_argument,
                  "--all verifies every revision of every repo: give no REPO or --revision.");
    auto scan = admin::scan_cache(root);
    for (const auto& w : scan.warnings) std::cerr << "warning: " << w << "\n";
    for (const auto& repo : scan.repos)
      for (const auto& rev : repo.revisions)
        failed = print(admin::verify_revision(root, repo.repo_id, repo.type, rev.commit), args) || failed;
  } else {
    if (args.repo.empty()) throw Error(ErrorCode::invalid_argument, "verify needs a REPO (or --all).");
    auto type = parse_repo_type(args.repo_type);
    if (!type) throw Error(ErrorCode::invalid_argument, "Unknown repo type '" + args.repo_type + "'.");
    failed = print(admin::verify_revision(root, args.repo, *type, args.revision), args);
  }
  if (failed)
    throw Error(ErrorCode::integrity,
                "verification failed: cached files do not match their hashes (see above). Delete the revision with "
                "`hubcache rm <revision>` and download it again.");
  return 0;
}

Registrar reg{{"verify", "Hash cached files against their blob names (offline; exit 8 on mismatch)", 44,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<VerifyArgs>();
                 sub.add_option("repo", args->repo, "Repo id, e.g. org/name");
                 sub.add_option("--repo-type", args->repo_type, "model, dataset or space")
                     ->check(CLI::IsMember({"model", "dataset", "space", "models", "datasets", "spaces"}));
                 sub.add_option("--revision", args->revision,
                                "Branch, tag or commit (default: refs/main, else the only cached revision)");
                 sub.add_option("--cache-dir", args->cache_dir, "Cache root (default: HF_HUB_CACHE, ...)");
                 sub.add_flag("--all", args->all, "Verify every cached revision of every repo");
                 sub.add_flag("--fail-on-missing-files", args->fail_missing,
                              "Fail when the tree listing has files the snapshot lacks");
                 sub.add_flag("--fail-on-extra-files", args->fail_extra,
                              "Fail when the snapshot has files the tree listing lacks");
                 return [args] { return run(*args); };
               }}};

}  // namespace
}  // namespace hubcache::cli
