// hubcache ls / rm / prune / verify / gc end to end: the real CLI over real caches.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "hubcache/admin.hpp"
#include "layout/naming.hpp"
#include "store/repo_cache.hpp"
#include "support/fault_server.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

namespace hubcache::test {
namespace {

void set_age(const fs::path& p, int ago) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  timespec t[2] = {{now.tv_sec - ago, 0}, {now.tv_sec - ago, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << p;
}

// Every path under `root` with its type and size: a fingerprint of the tree.
std::string tree_fingerprint(const fs::path& root) {
  std::vector<std::string> lines;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    auto st = it->symlink_status();
    std::string line = it->path().lexically_relative(root).string() + " " + std::to_string(static_cast<int>(st.type()));
    if (st.type() == fs::file_type::regular) line += " " + std::to_string(fs::file_size(it->path()));
    if (st.type() == fs::file_type::symlink) line += " -> " + fs::read_symlink(it->path()).string();
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

struct AdminCache {
  TempDir tmp;
  fs::path root = tmp.path() / "hub";
  CacheBuilder model{root, "Org/Model"};
  CacheBuilder data{root, "org/data", RepoType::dataset};
  std::string c1 = fake_commit(1), c2 = fake_commit(2), c3 = fake_commit(3);
  std::string shared, old_only, new_only, weights;
  AdminCache() {
    shared = model.add_file(c1, "config.json", std::string(1000, 'c'));
    model.add_file(c2, "config.json", std::string(1000, 'c'));
    old_only = model.add_file(c1, "weights.bin", std::string(3000, '1'), true);
    new_only = model.add_file(c2, "weights.bin", std::string(4000, '2'), true);
    model.set_ref("main", c2);
    model.set_ref("v1", c1);
    weights = data.add_file(c3, "train.csv", std::string(2000, 'd'), true);
    data.set_ref("main", c3);
    set_age(blob(old_only), 5 * 86400);
    set_age(blob(new_only), 3600);
    set_age(blob(shared), 3600);
    set_age(data.repo_dir() / "blobs" / weights, 2 * 86400);
  }
  fs::path blob(const std::string& etag) const { return model.repo_dir() / "blobs" / etag; }
  RunResult cli(std::vector<std::string> args) const {
    args.push_back("--cache-dir");
    args.push_back(root.string());
    // These fixtures exist only on disk: verify must not ask a real Hub about them.
    return run_cli(args, {{"HF_HUB_OFFLINE", "1"}});
  }
};

TEST(CacheAdmin, LsTableFooterWarningsAndIncomplete) {
  AdminCache c;
  CacheBuilder broken(c.root, "org/broken");
  broken.add_file(c.c1, "gone.txt", "gone");
  for (auto& e : fs::directory_iterator(broken.repo_dir() / "blobs")) fs::remove(e.path());
  write_file(c.model.repo_dir() / "blobs" / (std::string(64, 'a') + ".0badf00d.incomplete"), "partial");

  auto r = c.cli({"ls"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ID"), std::string::npos);
  EXPECT_NE(r.out.find("LAST_ACCESSED"), std::string::npos);
  EXPECT_NE(r.out.find("model/Org/Model"), std::string::npos);
  EXPECT_NE(r.out.find("8.0K"), std::string::npos);  // 1000 + 3000 + 4000, shared blob once
  EXPECT_NE(r.out.find("main, v1"), std::string::npos);
  EXPECT_EQ(last_line(r.out), "Found 2 repo(s) for a total of 3 revision(s) and 10.0K on disk.");
  EXPECT_NE(r.err.find("Got 1 warning(s)"), std::string::npos);
  EXPECT_NE(r.err.find("--show-warnings"), std::string::npos);
  EXPECT_EQ(r.err.find("Blob missing"), std::string::npos);
  EXPECT_NE(r.err.find("1 incomplete download(s) (7.0)"), std::string::npos);
  EXPECT_NE(r.err.find("hubcache prune"), std::string::npos);

  r = c.cli({"ls", "--show-warnings"});
  EXPECT_NE(r.err.find("Blob missing (broken symlink)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("models--org--broken"), std::string::npos);
}

TEST(CacheAdmin, LsJsonFiltersSortLimit) {
  AdminCache c;
  auto r = c.cli({"ls", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["id"], "dataset/org/data");
  EXPECT_EQ(j[1]["repo_id"], "Org/Model");
  EXPECT_EQ(j[1]["repo_type"], "model");
  EXPECT_EQ(j[1]["size"], 8000);
  EXPECT_EQ(j[1]["refs"], nlohmann::json::array({"main", "v1"}));

  r = c.cli({"ls", "--revisions", "--format", "json", "--sort", "size:asc"});
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["size"], 2000);
  EXPECT_EQ(j[2]["revision"], c.c2);
  EXPECT_EQ(j[2]["snapshot_path"], (c.model.repo_dir() / "snapshots" / c.c2).string());

  r = c.cli({"ls", "--revisions", "--format", "json", "-f", "type=model", "-f", "refs=v1"});
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["revision"], c.c1);

  r = c.cli({"ls", "--revisions", "--format", "json", "--filter", "accessed>4d"});
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.size(), 0u);  // c1 shares a blob used an hour ago: a revision's access is its newest blob
  r = c.cli({"ls", "--format", "json", "--filter", "modified>1d"});
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["id"], "dataset/org/data");

  r = c.cli({"ls", "--sort", "size", "--limit", "1", "--format", "json"});
  j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["id"], "model/Org/Model");

  r = c.cli({"ls", "--filter", "type>model"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("only '='"), std::string::npos);
  r = c.cli({"ls", "--filter", "size>12q"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST(CacheAdmin, RmDryRunWritesNothing) {
  AdminCache c;
  auto before = tree_fingerprint(c.root);
  auto r = c.cli({"rm", c.c1, "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("About to delete 0 repo(s) and 1 revision(s) totalling 3.0K."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("model/Org/Model@" + c.c1 + " [v1]"), std::string::npos);
  EXPECT_EQ(tree_fingerprint(c.root), before);
}

TEST(CacheAdmin, RmWithoutYesAndNoTerminalRefuses) {
  AdminCache c;
  auto before = tree_fingerprint(c.root);
  auto r = c.cli({"rm", "model/org/model"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not a terminal"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("-y"), std::string::npos);
  EXPECT_EQ(tree_fingerprint(c.root), before);
}

TEST(CacheAdmin, RmRevisionThenRepo) {
  AdminCache c;
  auto r = c.cli({"rm", c.c1, "-y"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(c.blob(c.old_only)));
  EXPECT_TRUE(fs::exists(c.blob(c.shared)));  // c2 still uses it
  EXPECT_FALSE(fs::exists(c.model.repo_dir() / "refs" / "v1"));
  EXPECT_EQ(read_file(c.model.pointer(c.c2, "config.json")), std::string(1000, 'c'));

  r = c.cli({"rm", "hf://datasets/ORG/DATA", "model/nobody/nothing", "-y"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("'model/nobody/nothing' not found"), std::string::npos);
  EXPECT_FALSE(fs::exists(c.data.repo_dir()));
  EXPECT_TRUE(fs::exists(c.model.repo_dir()));

  r = c.cli({"rm", "gpt2", "-y"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST(CacheAdmin, VerifyFlippedByteFailsWithExit8AndNamesTheFile) {
  AdminCache c;
  auto r = c.cli({"verify", "Org/Model"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 ok, 0 mismatch"), std::string::npos) << r.out;

  auto blob = c.blob(c.new_only);
  std::string content = read_file(blob);
  content[1234] ^= 0x01;
  write_file(blob, content);
  r = c.cli({"verify", "Org/Model"});
  EXPECT_EQ(r.exit_code, 8);
  EXPECT_NE(r.out.find("MISMATCH  weights.bin  expected " + c.new_only), std::string::npos) << r.out;
  // c1 holds other bytes under weights.bin and still verifies.
  r = c.cli({"verify", "Org/Model", "--revision", "v1"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = c.cli({"verify", "--all"});
  EXPECT_EQ(r.exit_code, 8);
  EXPECT_NE(r.out.find("dataset/org/data@" + c.c3 + ": 1 ok"), std::string::npos) << r.out;
  r = c.cli({"verify", "org/absent"});
  EXPECT_EQ(r.exit_code, 3);
}

TEST(CacheAdmin, PruneSparesALiveDownloadUntilItsLockIsReleased) {
  AdminCache c;
  fs::remove(c.model.repo_dir() / "refs" / "v1");  // c1 is now detached
  std::string etag(64, 'e');
  auto partial = c.model.repo_dir() / "blobs" / (etag + ".a1b2c3d4.incomplete");
  auto legacy = c.model.repo_dir() / "blobs" / (std::string(40, 'f') + ".incomplete");
  write_file(partial, "downloading");
  write_file(legacy, "stale");
  {
    // This test process plays the downloader: it holds the etag's lock while prune runs in another process.
    store::FileLock live(c.root / ".locks" / "models--Org--Model" / (etag + ".lock"));
    auto r = c.cli({"prune", "-y"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("About to delete 0 repo(s) and 1 revision(s) and 1 incomplete file(s)"), std::string::npos)
        << r.out;
    EXPECT_NE(r.err.find("a download is writing it"), std::string::npos) << r.err;
    EXPECT_TRUE(fs::exists(partial));
    EXPECT_FALSE(fs::exists(legacy));
    EXPECT_FALSE(fs::exists(c.model.repo_dir() / "snapshots" / c.c1));
    EXPECT_FALSE(fs::exists(c.blob(c.old_only)));
    EXPECT_TRUE(fs::exists(c.blob(c.shared)));
  }
  auto r = c.cli({"prune", "-y"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(partial));
  r = c.cli({"prune", "-y"});
  EXPECT_NE(r.out.find("Nothing to prune"), std::string::npos);
}

// What a kill -9 in the middle of an atomic write leaves (`<name>.<8hex>.tmp` of a
// ref, a tree listing, a snapshot link, CACHEDIR.TAG) and resume journals whose
// partial is gone: prune removes them once they are stale (untouched for five
// minutes, or, for a journal, its download lock free), and nothing else.
TEST(CacheAdmin, PruneRemovesStaleTempFilesOfKilledWritesAndOnlyThose) {
  AdminCache c;
  const auto repo = c.model.repo_dir();
  const std::string etag(64, 'e');
  auto plant = [](const fs::path& p, const std::string& content, int age) {
    fs::create_directories(p.parent_path());
    write_file(p, content);
    set_age(p, age);
  };
  const std::vector<fs::path> stale{
      repo / "refs" / "main.1a2b3c4d.tmp",
      repo / "trees" / (c.c2 + ".json.0badf00d.tmp"),
      repo / "snapshots" / c.c2 / "sub" / "w.bin.deadbeef.tmp",
      c.root / "CACHEDIR.TAG.12345678.tmp",
      repo / "blobs" / (etag + ".89abcdef.incomplete.resume"),      // its partial is gone
      repo / "blobs" / (etag + ".89abcdef.incomplete.resume.tmp"),  // (age does not matter)
  };
  for (std::size_t i = 0; i < stale.size(); ++i) plant(stale[i], "left", i < 4 ? 3600 : 0);
  const auto link_tmp = repo / "snapshots" / c.c2 / "x.bin.cafebabe.tmp";  // a killed link_pointer
  fs::create_symlink("../../blobs/" + c.shared, link_tmp);
  set_age(link_tmp, 3600);
  const auto fresh = repo / "refs" / "dev.aaaaaaaa.tmp";  // a write that may still be under way
  plant(fresh, "now", 0);
  const auto live_etag = std::string(64, 'd');
  const auto live_journal = repo / "blobs" / (live_etag + ".01234567.incomplete.resume");
  plant(live_journal, "{}", 3600);
  const std::vector<fs::path> kept{fresh, live_journal, repo / "snapshots" / c.c2 / "notes.tmp",
                                   repo / "trees" / "notes.1234.tmp"};
  plant(kept[2], "a repo file", 3600);
  plant(kept[3], "not ours", 3600);

  store::FileLock live(c.root / ".locks" / "models--Org--Model" / (live_etag + ".lock"));
  auto r = c.cli({"prune", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("and 7 leftover temp file(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("refs/main.1a2b3c4d.tmp (leftover of an interrupted write"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("1 temp file(s) younger than 5 minutes kept"), std::string::npos) << r.err;
  for (const auto& p : stale) EXPECT_TRUE(fs::exists(fs::symlink_status(p))) << "dry run deleted " << p;

  r = c.cli({"prune", "-y"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const auto& p : stale) EXPECT_FALSE(fs::exists(fs::symlink_status(p))) << p << " left: " << r.out;
  EXPECT_FALSE(fs::exists(fs::symlink_status(link_tmp)));
  for (const auto& p : kept) EXPECT_TRUE(fs::exists(p)) << p << " deleted: " << r.out;
  EXPECT_TRUE(fs::exists(c.blob(c.shared))) << "a temp link's blob stays";
  EXPECT_EQ(read_file(repo / "refs" / "main"), c.c2);
}

TEST(CacheAdmin, GcToASizeLimitEvictsTheOldestRevisionAndKeepsSharedBlobs) {
  AdminCache c;
  // 10000 bytes in all. The least recently used revision is c1 (its own blob is 5 days old).
  auto r = c.cli({"gc", "--max-size", "8k", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("model/Org/Model@" + c.c1), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(c.blob(c.old_only)));
  r = c.cli({"gc", "--max-size", "8k", "-y"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(c.model.repo_dir() / "snapshots" / c.c1));
  EXPECT_FALSE(fs::exists(c.blob(c.old_only)));
  EXPECT_TRUE(fs::exists(c.blob(c.shared)));
  EXPECT_TRUE(fs::exists(c.data.repo_dir()));
  r = c.cli({"gc", "--older-than", "1d", "-y"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(c.data.repo_dir()));  // its only revision was last used 2 days ago
  EXPECT_TRUE(fs::exists(c.model.repo_dir() / "snapshots" / c.c2));
  r = c.cli({"gc"});
  EXPECT_EQ(r.exit_code, 2);
}

// rm on a terminal asks first: "n" deletes nothing, "y" deletes.
TEST(CacheAdmin, RmAsksOnATerminal) {
  AdminCache c;
  const std::map<std::string, std::optional<std::string>> env{{"HF_HUB_OFFLINE", "1"}};
  const auto before = tree_fingerprint(c.root);
  auto t = run_cli_in_terminal({"rm", "dataset/org/data", "--cache-dir", c.root.string()}, env, true, "n\n");
  ASSERT_EQ(t.exit_code, 0) << t.terminal;
  EXPECT_NE(t.terminal.find("Proceed? [y/N]"), std::string::npos) << t.terminal;
  EXPECT_NE(t.terminal.find("nothing was deleted"), std::string::npos) << t.terminal;
  EXPECT_EQ(tree_fingerprint(c.root), before);
  t = run_cli_in_terminal({"rm", "dataset/org/data", "--cache-dir", c.root.string()}, env, true, "y\n");
  ASSERT_EQ(t.exit_code, 0) << t.terminal;
  EXPECT_NE(t.terminal.find("Freed 2.0K"), std::string::npos) << t.terminal;
  EXPECT_FALSE(fs::exists(c.data.repo_dir()));
  EXPECT_TRUE(fs::exists(c.model.repo_dir()));
}

// A real download in another process while prune runs: its partial file is kept
// (its lock is held), the download finishes, and prune reclaims nothing it needs.
TEST(CacheAdmin, PruneDuringARealDownloadKeepsItsPartial) {
  FaultServer server;
  const std::string data = test_bytes(3'000'000, 31);
  server.add_file("org/live", "model.bin", data, true);
  FaultServer::Faults slow;
  slow.trickle_bps = 2'000'000;
  server.set_faults(slow);
  TempDir tmp;
  const auto root = tmp.path() / "hub";
  std::map<std::string, std::optional<std::string>> env{{"HF_ENDPOINT", server.url()}, {"HF_HUB_CACHE", root.string()}};
  const int pid = start_cli({"download", "org/live", "model.bin"}, env);
  const auto blobs = root / "models--org--live/blobs";
  fs::path partial;
  for (int i = 0; i < 500 && partial.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    fs::path largest;
    if (partials_progress(blobs, &largest) > 100'000) partial = largest;
  }
  ASSERT_FALSE(partial.empty());
  auto r = run_cli({"prune", "-y"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("a download is writing it"), std::string::npos) << r.out << r.err;
  EXPECT_TRUE(fs::exists(partial)) << "prune deleted a live download's partial";
  EXPECT_EQ(wait_cli(pid), 0);
  auto snap = root / "models--org--live/snapshots" / server.commit_of("org/live") / "model.bin";
  EXPECT_EQ(read_file(snap), data);
  r = run_cli({"prune", "-y"}, env);
  EXPECT_NE(r.out.find("Nothing to prune"), std::string::npos) << r.out;
}

namespace {
// Rounds of: the branch moves to a new commit with the same files (so the new
// revision reuses every blob of the previous one), a download of it runs, and at the
// same time `delete` runs again and again. Returns the problems seen.
std::vector<std::string> churn(
    const std::function<void(const fs::path& root, const std::string& current,
                             const std::map<std::string, std::optional<std::string>>&)>& del) {
  FaultServer server;
  for (int i = 0; i < 20; ++i)
    server.add_file("org/churn", "f" + std::to_string(i) + ".bin", test_bytes(20'000, 100 + i), true);
  server.add_file("org/churn", "pin.txt", "pinned");
  TempDir tmp;
  const auto root = tmp.path() / "hub";
  std::map<std::string, std::optional<std::string>> env{
      {"HF_ENDPOINT", server.url()}, {"HF_HUB_CACHE", root.string()}, {"HUBCACHE_RETRY_BASE_MS", "10"}};
  std::vector<std::string> problems;
  // A revision that always stays (own blob, own ref), so no round deletes the whole repo.
  if (run_cli({"download", "org/churn", "pin.txt", "--revision", server.commit_of("org/churn")}, env).exit_code != 0)
    problems.push_back("pinned download failed");
  server.bump_commit("org/churn");
  run_cli({"download", "org/churn", "--include", "f*"}, env);
  for (int round = 0; round < 4; ++round) {
    server.bump_commit("org/churn");
    const std::string current = server.commit_of("org/churn");
    std::atomic<bool> done{false};
    RunResult download;
    std::thread downloader([&] {
      download = run_cli({"download", "org/churn", "--include", "f*", "--max-workers", "2"}, env);
      done = true;
    });
    while (!done) del(root, current, env);
    downloader.join();
    const std::string tag = "round " + std::to_string(round) + ": ";
    if (download.exit_code != 0) problems.push_back(tag + "download failed: " + download.err);
    auto r = run_cli({"ls", "--show-warnings"}, env);
    if (r.err.find("warning") != std::string::npos) problems.push_back(tag + r.err);
    std::error_code ec;
    for (auto& e : fs::recursive_directory_iterator(root / "models--org--churn/snapshots", ec))
      if (e.is_symlink() && !fs::exists(e.path())) problems.push_back(tag + "dangling " + e.path().string());
  }
  return problems;
}
}  // namespace

// rm of the previous revisions while a download links the new one to their blobs:
// the blobs the new revision needs are never deleted, no link is left dangling.
TEST(CacheAdmin, RmOfOldRevisionsWhileANewOneDownloadsNeverLeavesADanglingLink) {
  auto problems = churn([](const fs::path& root, const std::string& current, const auto& env) {
    auto scan = admin::scan_cache(root);
    std::vector<std::string> args{"rm", "-y"};
    for (const auto& repo : scan.repos)
      for (const auto& rev : repo.revisions)
        if (rev.commit != current && !(rev.files.size() == 1 && rev.files.front().name == "pin.txt"))
          args.push_back(rev.commit);
    if (args.size() > 2) run_cli(args, env);
  });
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
}

// A gc that evicts every revision removes the whole repo folder. A download makes
// blobs/ and the snapshot folder only once it holds the blob's lock (gc and rm keep
// a repo whose locks are held), and makes them again (up to five times) when they vanished in
// the window before gc could see that lock; refs likewise. Before, a download that
// had made blobs/ but not yet taken its lock failed with exit 11 ("Cannot create
// blobs/<etag>.<8hex>.incomplete: No such file or directory") and left a repo
// folder with only blobs/.
TEST(CacheAdmin, GcOfEverythingWhileADownloadRunsNeitherFailsItNorCorruptsTheRepo) {
  auto problems = churn([](const fs::path& root, const std::string&, const auto& env) {
    run_cli({"gc", "--max-size", "1", "-y", "--cache-dir", root.string()}, env);
  });
  EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems);
}

// Online verify compares every file with the Hub's tree listing of the commit:
// files missing or extra, and a link to the wrong (but intact) blob.
TEST(CacheAdmin, VerifyOnlineAgainstTheHubsTreeListing) {
  FaultServer server;
  server.add_file("org/v", "a.txt", "alpha");
  server.add_file("org/v", "b.txt", "beta");
  server.add_file("org/v", "w.bin", test_bytes(5000, 32), true);
  TempDir tmp;
  const auto root = tmp.path() / "hub";
  std::map<std::string, std::optional<std::string>> env{{"HF_ENDPOINT", server.url()}, {"HF_HUB_CACHE", root.string()}};
  ASSERT_EQ(run_cli({"download", "org/v", "a.txt"}, env).exit_code, 0);
  ASSERT_EQ(run_cli({"download", "org/v", "w.bin"}, env).exit_code, 0);
  const auto snap = root / "models--org--v/snapshots" / server.commit_of("org/v");
  fs::create_symlink("../../blobs/" + util::git_blob_sha1_hex("alpha"), snap / "extra.txt");

  auto r = run_cli({"verify", "org/v"}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("MISSING  b.txt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("EXTRA  extra.txt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("against the Hub's tree listing"), std::string::npos) << r.out;
  EXPECT_EQ(run_cli({"verify", "org/v", "--fail-on-missing-files"}, env).exit_code, 8);
  EXPECT_EQ(run_cli({"verify", "org/v", "--fail-on-extra-files"}, env).exit_code, 8);

  server.clear_log();
  r = run_cli({"verify", "org/v", "--offline", "--fail-on-missing-files"}, env);
  EXPECT_EQ(r.exit_code, 0) << "nothing to compare with offline: " << r.out << r.err;
  EXPECT_NE(r.out.find("missing/extra files not checked"), std::string::npos) << r.out;
  EXPECT_TRUE(server.log().empty());

  // a.txt now links to w.bin's blob: intact as a blob, wrong for that path.
  fs::remove(snap / "a.txt");
  fs::create_symlink("../../blobs/" + util::sha256_hex(test_bytes(5000, 32)), snap / "a.txt");
  EXPECT_EQ(run_cli({"verify", "org/v", "--offline"}, env).exit_code, 0) << "offline only the blob names speak";
  r = run_cli({"verify", "org/v"}, env);
  EXPECT_EQ(r.exit_code, 8) << r.out;
  EXPECT_NE(r.out.find("MISMATCH  a.txt  expected " + util::git_blob_sha1_hex("alpha")), std::string::npos) << r.out;

  // The Hub out of reach: a warning, and the offline verdict.
  r = run_cli({"verify", "org/v", "--revision", server.commit_of("org/v")},
              {{"HF_ENDPOINT", "http://127.0.0.1:9"}, {"HF_HUB_CACHE", root.string()}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("checking offline only"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace hubcache::test
