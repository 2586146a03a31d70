// hubcache verify REPO: hash every cached file of a revision. Offline, against
// its blob name (and trees/<commit>.json for real files); online (the default
// unless HF_HUB_OFFLINE or --offline), against the Hub's tree listing of that
// commit as `hf cache verify` does, which also finds missing and extra files.
#include <iostream>

#include "admin/revision.hpp"
#include "cli/command.hpp"
#include "hub/repo_api.hpp"
#include "hubcache/admin.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "store/repo_cache.hpp"
#include "transfer/download.hpp"
#include "util/shell.hpp"

namespace hubcache::cli {
namespace {

struct VerifyArgs {
  std::string repo;
  std::string repo_type = "model";
  std::string revision;
  std::string cache_dir;
  std::string token;
  bool all = false;
  bool offline = false;
  bool fail_missing = false;
  bool fail_extra = false;
};

// The Hub's listing of `commit`, or nullopt (with a warning) when it cannot be had:
// verification then goes on offline, it never depends on the network.
std::optional<admin::TreeListing> hub_listing(const std::string& repo, RepoType type, const std::string& commit,
                                              const VerifyArgs& args) {
  if (args.offline || Settings::get().offline) return std::nullopt;
  Options o;
  o.repo_type = type;
  o.revision = commit;
  if (!args.token.empty()) o.token = args.token;
  hub::Context ctx = hub::make_context(repo, "", o);
  try {
    http::Client client;
    // One try: a Hub that cannot be reached should cost seconds, not a minute of backoff.
    auto files = hub::list_tree(client, ctx, commit, 0);
    admin::TreeListing listing;
    for (const auto& f : files) listing[f.path] = admin::TreeEntry{f.size, f.blob_id, f.lfs_sha256};
    return listing;
  } catch (const Error& e) {
    std::cerr << "warning: cannot list " << to_string(type) << " '" << repo << "' at " << commit << " on "
              << ctx.endpoint << " (" << e.what() << "); checking offline only. Pass --offline to skip the Hub.\n";
    return std::nullopt;
  }
}

// Prints one report; returns whether it fails the command.
bool print(const admin::VerifyReport& r, const VerifyArgs& args, bool online) {
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
    std::cout << ", " << r.missing.size() << " missing, " << r.extra.size() << " extra ("
              << (online ? "against the Hub's tree listing" : "against trees/" + r.commit + ".json") << ")";
  else
    std::cout << " (no tree listing: missing/extra files not checked)";
  std::cout << "\n";
  return bad > 0 || (args.fail_missing && !r.missing.empty()) || (args.fail_extra && !r.extra.empty());
}

// A revision that failed, for the advice at the end.
struct Failed {
  std::string repo;
  RepoType type;
  std::string commit;
};

bool verify_one(const std::filesystem::path& root, const std::string& repo, RepoType type, const std::string& revision,
                const VerifyArgs& args, std::vector<Failed>& failures) {
  store::RepoCache cache(root, repo, type);
  std::error_code ec;
  if (!std::filesystem::is_directory(cache.repo_dir(), ec))
    throw Error(ErrorCode::not_cached,
                std::string(to_string(type)) + " '" + repo + "' is not in the cache at " + root.string() + ".");
  const std::string commit = admin::choose_cached_commit(cache, revision);
  auto listing = hub_listing(repo, type, commit, args);
  auto report = admin::verify_revision(root, repo, type, commit, listing ? &*listing : nullptr);
  const bool failed = print(report, args, listing.has_value());
  if (failed) failures.push_back({repo, type, commit});
  return failed;
}

// "Delete them with `hubcache rm ...` and download them again with `hubcache download ...`".
std::string repair_advice(const std::vector<Failed>& failures, const VerifyArgs& args) {
  std::vector<std::string> rm{"hubcache", "rm"};
  for (const auto& f : failures) rm.push_back(f.commit);
  if (!args.cache_dir.empty()) rm.insert(rm.end(), {"--cache-dir", args.cache_dir});
  std::string out = "Delete the failed revision" + std::string(failures.size() > 1 ? "s" : "") + " with `" +
                    util::shell_command(rm) + "` and download " + (failures.size() > 1 ? "them" : "it") + " again:";
  for (std::size_t i = 0; i < failures.size(); ++i) {
    Options o;
    o.repo_type = failures[i].type;
    o.revision = failures[i].commit;
    o.cache_dir = args.cache_dir;
    out += std::string(i ? " and `" : " `") + download_command(failures[i].repo, "", o) + "`";
  }
  return out + ".";
}

int run(const VerifyArgs& args) {
  Options o;
  o.cache_dir = args.cache_dir;
  auto root = resolve_cache_root(o);
  bool failed = false;
  std::vector<Failed> failures;
  if (args.all) {
    if (!args.repo.empty() || !args.revision.empty())
      throw Error(ErrorCode::invalid_argument,
                  "--all verifies every revision of every repo: give no REPO or --revision.");
    auto scan = admin::scan_cache(root);
    for (const auto& w : scan.warnings) std::cerr << "warning: " << w << "\n";
    for (const auto& repo : scan.repos)
      for (const auto& rev : repo.revisions)
        failed = verify_one(root, repo.repo_id, repo.type, rev.commit, args, failures) || failed;
  } else {
    if (args.repo.empty()) throw Error(ErrorCode::invalid_argument, "verify needs a REPO (or --all).");
    auto type = parse_repo_type(args.repo_type);
    if (!type) throw Error(ErrorCode::invalid_argument, "Unknown repo type '" + args.repo_type + "'.");
    failed = verify_one(root, args.repo, *type, args.revision, args, failures);
  }
  if (failed)
    throw Error(ErrorCode::integrity,
                "verification failed: cached files do not match their hashes, or files are missing or extra (see "
                "above). " +
                    repair_advice(failures, args));
  return 0;
}

Registrar reg{
    {"verify", "Hash cached files against their blob names and the Hub's listing (exit 8 on mismatch)", 44,
     [](CLI::App& sub) -> std::function<int()> {
       auto args = std::make_shared<VerifyArgs>();
       sub.add_option("repo", args->repo, "Repo id, e.g. org/name");
       sub.add_option("--repo-type", args->repo_type, "model, dataset or space")
           ->check(CLI::IsMember({"model", "dataset", "space", "models", "datasets", "spaces"}));
       sub.add_option("--revision", args->revision,
                      "Branch, tag or commit (default: refs/main, else the only cached revision)");
       sub.add_option("--cache-dir", args->cache_dir, "Cache root (default: HF_HUB_CACHE, ...)");
       sub.add_option("--token", args->token, "Access token for the tree listing (prefer HF_TOKEN or the token file)");
       sub.add_flag("--offline", args->offline, "Do not ask the Hub for the tree listing (same as HF_HUB_OFFLINE=1)");
       sub.add_flag("--all", args->all, "Verify every cached revision of every repo");
       sub.add_flag("--fail-on-missing-files", args->fail_missing,
                    "Fail when the tree listing has files the snapshot lacks");
       sub.add_flag("--fail-on-extra-files", args->fail_extra,
                    "Fail when the snapshot has files the tree listing lacks");
       return [args] { return run(*args); };
     }}};

}  // namespace
}  // namespace hubcache::cli
