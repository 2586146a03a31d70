// Whole-repo downloads (`hubcache download REPO`) against a live local Hub.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "hubcache/cache.hpp"
#include "layout/naming.hpp"
#include "support/fault_server.hpp"
#include "support/serve_process.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache;
using namespace hubcache::test;
namespace fs = std::filesystem;

namespace {

class Snapshot : public ::testing::Test {
 protected:
  FaultServer server;
  TempDir dir;
  std::map<std::string, std::string> files;  // path -> content

  void SetUp() override {
    for (int i = 0; i < 500; ++i) {
      std::string path = "dir" + std::to_string(i % 5) + "/sub" + std::to_string(i % 3) + "/file" + std::to_string(i) +
                         (i % 50 == 0 ? ".bin" : ".txt");
      files[path] = "content of " + path;
      server.add_file("org/big", path, files[path], i % 50 == 0);
    }
    server.add_file("org/big", "README.md", "# readme");
    files["README.md"] = "# readme";
    server.set_page_size(100);
  }
  std::map<std::string, std::optional<std::string>> env() const {
    return {
        {"HF_ENDPOINT", server.url()}, {"HF_HUB_CACHE", (dir / "cache").string()}, {"HUBCACHE_RETRY_BASE_MS", "10"}};
  }
  RunResult cli(std::vector<std::string> args, std::map<std::string, std::optional<std::string>> extra = {}) {
    auto e = env();
    for (auto& [k, v] : extra) e[k] = v;
    return run_cli(args, e);
  }
  fs::path snap() { return dir / "cache/models--org--big/snapshots" / server.commit_of("org/big"); }
};

std::size_t count_files(const fs::path& root) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(root, ec))
    if (e.is_regular_file()) ++n;
  return n;
}

}  // namespace

TEST_F(Snapshot, WholeRepoWithPaginationThenANoOpRerun) {
  auto r = cli({"download", "org/big"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), snap().string());
  for (const auto& [path, content] : files) ASSERT_EQ(read_file(snap() / path), content) << path;
  EXPECT_EQ(count_files(snap()), files.size());
  EXPECT_GE(server.count("GET", "/tree/"), 6u) << "pagination followed";
  EXPECT_EQ(read_file(dir / "cache/models--org--big/refs/main"), server.commit_of("org/big"));

  // trees/<commit>.json in Python's format: all files, sizes and blob ids.
  auto tree =
      nlohmann::json::parse(read_file(dir / "cache/models--org--big/trees" / (server.commit_of("org/big") + ".json")));
  EXPECT_EQ(tree["format_version"], 1);
  EXPECT_EQ(tree["files"].size(), files.size());
  EXPECT_EQ(tree["files"]["README.md"]["blob_id"], util::git_blob_sha1_hex("# readme"));
  EXPECT_EQ(tree["files"]["dir0/sub0/file0.bin"]["lfs_sha256"], util::sha256_hex(files["dir0/sub0/file0.bin"]));

  // The revision was resolved once; no file cost a HEAD (names and sizes come from the
  // tree); every file came from /resolve/<commit>/ so a moving branch cannot mix revisions.
  const auto commit = server.commit_of("org/big");
  EXPECT_EQ(server.count("GET", "/revision/"), 1u);
  EXPECT_EQ(server.count("HEAD", ""), 0u);
  std::size_t file_gets = 0;
  for (const auto& q : server.log())
    if (q.server == "hub" && q.method == "GET" && q.target.find("/resolve/") != std::string::npos) {
      ++file_gets;
      EXPECT_NE(q.target.find("/resolve/" + commit + "/"), std::string::npos) << q.target;
    }
  EXPECT_EQ(file_gets, files.size());

  server.clear_log();
  r = cli({"download", "org/big"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.count("GET", "/resolve/"), 0u) << "no file GET on an up-to-date snapshot";
  EXPECT_EQ(server.count("HEAD", "/resolve/"), 0u);
  EXPECT_EQ(server.count("GET", "/tree/"), 0u) << "the tree of a commit is cached";
  EXPECT_EQ(server.log().size(), 1u) << "only the branch -> commit question";

  // A commit, or a branch whose ref is fresher than --max-age: not one request.
  server.clear_log();
  r = cli({"download", "org/big", "--revision", commit});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), snap().string());
  r = cli({"download", "org/big", "--max-age", "3600"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), snap().string());
  EXPECT_TRUE(server.log().empty()) << server.log().size() << " requests";
}

// The selection Python's fnmatchcase makes, including where libc fnmatch differs:
// case, '?' on a non-ASCII character, "[^...]" (not a negation in Python), empty ranges.
TEST_F(Snapshot, PatternsFollowPythonsFnmatchcaseExactly) {
  for (const char* f : {"config.json", "Config.JSON", "a^b.txt", "ab.txt", "\xc3\xa9.txt", "x.txt", "sub/deep/y.txt",
                        "[literal].txt", "sub/z.json"})
    server.add_file("org/pat", f, std::string("bytes of ") + f);
  auto selection = [&](std::vector<std::string> patterns, const std::string& flag = "--include") {
    std::vector<std::string> args{"download", "org/pat", "--dry-run", "--format", "json"};
    for (auto& p : patterns) {
      args.push_back(flag);
      args.push_back(p);
    }
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::set<std::string> names;
    const auto j = nlohmann::json::parse(r.out);
    for (const auto& f : j["files"]) names.insert(f["file"].get<std::string>());
    return names;
  };
  using Set = std::set<std::string>;
  EXPECT_EQ(selection({"*.json"}), (Set{"config.json", "sub/z.json"})) << "case-sensitive; '*' crosses '/'";
  EXPECT_EQ(selection({"[^a]*"}), (Set{"a^b.txt", "ab.txt"})) << "'^' is a member, not a negation";
  EXPECT_EQ(selection({"?.txt"}), (Set{"\xc3\xa9.txt", "x.txt"})) << "'?' is one character, not one byte";
  EXPECT_EQ(selection({"[!a-x]*"}), (Set{"Config.JSON", "\xc3\xa9.txt", "[literal].txt"}));
  EXPECT_EQ(selection({"[[]literal]*"}), (Set{"[literal].txt"}));
  EXPECT_EQ(selection({"[z-a]*"}), Set{}) << "an empty range matches nothing";
  EXPECT_EQ(selection({"sub/"}), (Set{"sub/deep/y.txt", "sub/z.json"})) << "'dir/' means 'dir/*'";
  EXPECT_EQ(selection({"sub\\deep\\*"}), (Set{"sub/deep/y.txt"})) << "backslashes are separators";
  EXPECT_EQ(selection({"*.txt", "sub/*"}, "--exclude"), (Set{"config.json", "Config.JSON"}));
}

TEST_F(Snapshot, IncludeExcludeUseFnmatchcase) {
  auto r = cli({"download", "org/big", "--include", "dir1/*", "--exclude", "*.bin", "--exclude", "*/sub2/*"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::size_t expected = 0;
  for (const auto& [path, content] : files) {
    bool want = path.rfind("dir1/", 0) == 0 && path.find(".bin") == std::string::npos &&
                path.find("/sub2/") == std::string::npos;
    expected += want;
    EXPECT_EQ(fs::exists(snap() / path), want) << path;
  }
  EXPECT_EQ(count_files(snap()), expected);
  EXPECT_GT(expected, 0u);
}

TEST_F(Snapshot, DryRunWritesNothing) {
  auto r = cli({"download", "org/big", "--include", "dir0/*", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("[dry-run] Will download 100 files (out of 100)"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir / "cache/models--org--big"));
  r = cli({"download", "org/big", "--dry-run", "--format", "json"});
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["files"].size(), files.size());
}

TEST_F(Snapshot, LocalDirHasRealFilesAndPythonMetadata) {
  auto local = dir / "local";
  auto r = cli({"download", "org/big", "--include", "dir2/sub1/*", "--local-dir", local.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), local.string());
  std::string some;
  for (const auto& [path, content] : files)
    if (path.rfind("dir2/sub1/", 0) == 0) {
      EXPECT_FALSE(fs::is_symlink(local / path));
      EXPECT_EQ(read_file(local / path), content);
      some = path;
    }
  auto meta = read_file(local / ".cache/huggingface/download" / (some + ".metadata"));
  auto lines = std::vector<std::string>{};
  for (std::size_t a = 0, b; (b = meta.find('\n', a)) != std::string::npos; a = b + 1)
    lines.push_back(meta.substr(a, b - a));
  ASSERT_EQ(lines.size(), 3u) << meta;
  EXPECT_EQ(lines[0], server.commit_of("org/big"));
  EXPECT_TRUE(lines[1] == util::git_blob_sha1_hex(files[some]) || lines[1] == util::sha256_hex(files[some]));
  EXPECT_GT(std::stod(lines[2]), 1.7e9);
  EXPECT_EQ(read_file(local / ".cache/huggingface/.gitignore"), "*");
  EXPECT_FALSE(fs::exists(dir / "cache/models--org--big/snapshots")) << "local_dir does not fill the cache";

  server.clear_log();
  r = cli({"download", "org/big", "--include", "dir2/sub1/*", "--local-dir", local.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.count("GET", "/resolve/"), 0u) << "an up-to-date local dir downloads nothing";
}

// One named file with --local-dir prints that file's path, as `hf download REPO FILE
// --local-dir L` does, in every format, so `$(hubcache download ... -q)` is the file.
TEST_F(Snapshot, OneFileIntoALocalDirPrintsThatFilesPathInEveryFormat) {
  const auto local = dir / "local";
  const std::string file = "dir1/sub1/file1.txt";
  for (const std::vector<std::string>& format :
       {std::vector<std::string>{}, {"-q"}, {"--format", "quiet"}, {"--format", "human"}}) {
    std::vector<std::string> args{"download", "org/big", file, "--local-dir", local.string()};
    args.insert(args.end(), format.begin(), format.end());
    auto r = cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, (local / file).string() + "\n") << ::testing::PrintToString(format);
  }
  auto r = cli({"download", "org/big", file, "--local-dir", local.string(), "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json({{"path", (local / file).string()}})) << r.out;
  EXPECT_EQ(read_file(local / file), files[file]);
  // Offline from the filled local dir too.
  r = cli({"download", "org/big", file, "--local-dir", local.string(), "-q", "--offline"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (local / file).string() + "\n");
}

TEST_F(Snapshot, OfflineResolutionAndIncompleteSnapshots) {
  ASSERT_EQ(cli({"download", "org/big", "--include", "dir3/*"}).exit_code, 0);
  server.clear_log();
  auto r = cli({"download", "org/big"}, {{"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 3) << "the tree says files are missing";
  EXPECT_NE(r.err.find("incomplete"), std::string::npos) << r.err;
  r = cli({"download", "org/big", "--include", "dir3/*"}, {{"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), snap().string());
  EXPECT_TRUE(server.log().empty());
}

TEST_F(Snapshot, InterruptedRunResumesWithOnlyTheMissingFiles) {
  FaultServer::Faults f;
  f.fail_count = 1000;
  f.fail_server = "cdn";  // every LFS file fails
  server.set_faults(f);
  auto r = cli({"download", "org/big"}, {{"HUBCACHE_MAX_RETRIES", "0"}});
  EXPECT_EQ(r.exit_code, 9) << r.err;
  server.set_faults({});
  server.clear_log();
  r = cli({"download", "org/big", "--max-workers", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(server.count("GET", "/resolve/"), files.size()) << "finished files were skipped";
  for (const auto& [path, content] : files) ASSERT_EQ(read_file(snap() / path), content) << path;
}

TEST_F(Snapshot, HfUriAndSeveralFiles) {
  const auto commit = server.commit_of("org/big");
  auto r = cli({"download", "hf://org/big@" + commit + "/dir4/sub0/", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, snap().string() + "\n");
  EXPECT_TRUE(fs::exists(snap() / "dir4/sub0/file9.txt"));
  EXPECT_FALSE(fs::exists(snap() / "dir0"));
  r = cli({"download", "org/big", "README.md", "dir0/sub0/file0.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), snap().string());
  EXPECT_TRUE(fs::exists(snap() / "dir0/sub0/file0.bin"));
  r = cli({"download", "hf://org/big", "--revision", "main"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// local_dir: a blob the cache already has is copied, a correct file already in
// place is adopted (hashed, metadata written), a wrong one is replaced; partial
// files never appear among the user's files; offline, the folder is the answer,
// checked against .cache/huggingface/trees/<commit>.json.
TEST_F(Snapshot, LocalDirReusesTheCacheAndFilesInPlaceAndWorksOffline) {
  const auto commit = server.commit_of("org/big");
  ASSERT_EQ(cli({"download", "org/big", "--include", "dir0/sub0/*"}).exit_code, 0);
  const auto local = dir / "local";
  server.clear_log();
  auto r = cli({"download", "org/big", "--include", "dir0/sub0/*", "--local-dir", local.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.count("GET", "/resolve/"), 0u) << "copied from the cache";
  EXPECT_FALSE(fs::is_symlink(local / "dir0/sub0/file0.bin"));
  EXPECT_EQ(read_file(local / "dir0/sub0/file0.bin"), files["dir0/sub0/file0.bin"]);
  EXPECT_TRUE(fs::exists(local / ".cache/huggingface/download/dir0/sub0/file0.bin.metadata"));
  EXPECT_TRUE(fs::exists(local / ".cache/huggingface/download/dir0/sub0/file0.bin.lock"));
  auto tree = nlohmann::json::parse(read_file(local / ".cache/huggingface/trees" / (commit + ".json")));
  EXPECT_EQ(tree["files"].size(), files.size()) << "the whole listing, unfiltered";

  // Files already in place: right bytes are adopted, wrong bytes replaced.
  const std::string good = "dir1/sub1/file1.txt", bad = "dir1/sub1/file16.txt";
  write_file(local / good, files[good]);
  write_file(local / bad, "edited by hand");
  server.clear_log();
  r = cli({"download", "org/big", "--local-dir", local.string(), good, bad});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.count("GET", "/resolve/"), 1u) << "only the wrong file was downloaded";
  EXPECT_EQ(read_file(local / bad), files[bad]);
  auto meta = read_file(local / ".cache/huggingface/download" / (good + ".metadata"));
  EXPECT_EQ(meta.substr(0, meta.find('\n')), commit);

  std::vector<std::string> stray;
  for (auto& e : fs::recursive_directory_iterator(local)) {
    auto rel = e.path().lexically_relative(local).string();
    if (rel.rfind(".cache", 0) != 0 &&
        (rel.find(".part") != std::string::npos || rel.find(".incomplete") != std::string::npos ||
         rel.find(".tmp") != std::string::npos))
      stray.push_back(rel);
  }
  EXPECT_TRUE(stray.empty()) << ::testing::PrintToString(stray);

  // Offline: no refs/ in the main cache is needed; the folder and its tree listing answer.
  server.clear_log();
  r = cli({"download", "org/big", "--include", "dir0/sub0/*", "--local-dir", local.string()},
          {{"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), local.string());
  fs::remove(local / "dir0/sub0/file15.txt");
  r = cli({"download", "org/big", "--include", "dir0/sub0/*", "--local-dir", local.string()},
          {{"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("incomplete"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dir0/sub0/file15.txt"), std::string::npos) << r.err;
  EXPECT_TRUE(server.log().empty());
}

TEST_F(Snapshot, ForceDownloadFetchesEverySelectedFileAgain) {
  ASSERT_EQ(cli({"download", "org/big", "--include", "dir4/sub2/*"}).exit_code, 0);
  std::size_t n = 0;
  for (const auto& [path, content] : files) n += path.rfind("dir4/sub2/", 0) == 0;
  server.clear_log();
  auto r = cli({"download", "org/big", "--include", "dir4/sub2/*", "--force-download"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.count("GET", "/resolve/"), n);
}

TEST_F(Snapshot, FormatJsonListsThePathCommitAndFiles) {
  auto r = cli({"download", "org/big", "--include", "dir3/sub1/*", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["path"], snap().string());
  EXPECT_EQ(j["commit"], server.commit_of("org/big"));
  std::size_t n = 0;
  for (const auto& [path, content] : files) n += path.rfind("dir3/sub1/", 0) == 0;
  EXPECT_EQ(j["files"].size(), n);
  EXPECT_TRUE(j["files"][0]["downloaded"].get<bool>());
}

// The CLI on a terminal: one total line for the whole snapshot (files done / total, bytes, rate, ETA).
TEST_F(Snapshot, OneAggregateProgressBarOnATerminal) {
  auto t = run_cli_in_terminal({"download", "org/big", "--include", "dir0/sub0/*"}, env());
  ASSERT_EQ(t.exit_code, 0) << t.terminal;
  EXPECT_NE(t.terminal.find("Fetching 34/34 files"), std::string::npos) << t.terminal;
  EXPECT_NE(t.terminal.find("ETA"), std::string::npos) << t.terminal;
  EXPECT_NE(t.terminal.find(snap().string()), std::string::npos);
}

// kill -9 in the middle of a whole-repo download: finished files are skipped and
// the partial ones continue (fewer bytes than the files' total cross the wire again).
TEST_F(Snapshot, KilledWholeRepoDownloadResumesItsPartialFiles) {
  std::uint64_t total = 0;
  for (int i = 0; i < 4; ++i) {
    server.add_file("org/heavy", "w" + std::to_string(i) + ".bin", test_bytes(1'000'000, 40 + i), true);
    total += 1'000'000;
  }
  FaultServer::Faults slow;
  slow.trickle_bps = 2'000'000;
  server.set_faults(slow);
  const int pid = start_cli({"download", "org/heavy", "--max-workers", "4"}, env());
  const auto blobs = dir / "cache/models--org--heavy/blobs";
  std::uintmax_t partial = 0;
  for (int i = 0; i < 500 && partial < 4 * 300'000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    partial = partials_progress(blobs);  // from the journals: temp files are sized up front
  }
  ::kill(pid, SIGKILL);
  wait_cli(pid);
  ASSERT_GE(partial, 4u * 300'000u);
  server.set_faults({});
  server.clear_log();
  auto r = cli({"download", "org/heavy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(read_file(fs::path(last_line(r.out)) / ("w" + std::to_string(i) + ".bin")),
              test_bytes(1'000'000, 40 + i));
  EXPECT_LE(server.body_bytes_sent(), total - partial) << "partials continued, not restarted";
}

// Files in parallel: the library's default is 8 workers, max_workers bounds it.
// Observed through the progress callback: files started and not yet finished.
TEST(SnapshotWorkers, FilesDownloadInParallelUpToMaxWorkers) {
  FaultServer server;
  for (int i = 0; i < 16; ++i)
    server.add_file("org/par", "f" + std::to_string(i) + ".bin", test_bytes(200'000, i), true);
  FaultServer::Faults slow;
  slow.trickle_bps = 1'000'000;  // each file takes a few hundred milliseconds
  server.set_faults(slow);
  TempDir dir;
  auto max_in_flight = [&](std::optional<int> workers) {
    Options o;
    o.endpoint = server.url();
    o.cache_dir = dir / ("cache" + std::to_string(workers.value_or(0)));
    o.offline = false;
    std::mutex m;
    std::set<std::string> in_flight;
    std::size_t peak = 0;
    o.progress = [&](const ProgressEvent& e) {
      std::lock_guard lock(m);
      if (e.finished)
        in_flight.erase(e.file);
      else
        in_flight.insert(e.file);
      peak = std::max(peak, in_flight.size());
    };
    SnapshotOptions so;
    if (workers) so.max_workers = *workers;
    // On a thread of its own: its keep-alive connection closes with it, not at server shutdown.
    std::thread([&] {
      try {
        EXPECT_EQ(snapshot("org/par", o, so).files.size(), 16u);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }).join();
    return peak;
  };
  const auto by_default = max_in_flight(std::nullopt);
  EXPECT_GE(by_default, 4u) << "files overlap";
  EXPECT_LE(by_default, 8u) << "8 workers by default";
  EXPECT_LE(max_in_flight(2), 2u);
}

// hubcache serve as the Hub: a dataset through an hf://datasets/... URI, a folder of
// it, one file of it, and --token for a server that requires one.
TEST(SnapshotServe, HfDatasetUriAndTokenAgainstHubcacheServe) {
  TempDir dir;
  write_file(dir / "ds/data/train.csv", "a,b\n1,2\n");
  write_file(dir / "ds/data/test.csv", "a,b\n3,4\n");
  write_file(dir / "ds/README.md", "# ds\n");
  auto r = run_cli({"import", (dir / "ds").string(), "--repo", "org/ds", "--repo-type", "dataset", "--cache-dir",
                    (dir / "served").string(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string commit = last_line(r.out);
  write_file(dir / "token", "hf_serve_token\n");
  ServeProcess serve(dir / "served", {"--token-file", (dir / "token").string()});
  std::map<std::string, std::optional<std::string>> env{{"HF_ENDPOINT", serve.url()},
                                                        {"HF_HUB_CACHE", (dir / "cache").string()}};
  const auto snap = dir / "cache/datasets--org--ds/snapshots" / commit;

  r = run_cli({"download", "hf://datasets/org/ds@main/data/", "-q"}, env);
  EXPECT_EQ(r.exit_code, 4) << "the server wants a token: " << r.err;
  r = run_cli({"download", "hf://datasets/org/ds@main/data/", "-q", "--token", "hf_serve_token"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, snap.string() + "\n");
  EXPECT_EQ(read_file(snap / "data/train.csv"), "a,b\n1,2\n");
  EXPECT_FALSE(fs::exists(snap / "README.md"));
  r = run_cli({"download", "hf://datasets/org/ds@" + commit + "/README.md", "-q", "--token", "hf_serve_token"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (snap / "README.md").string() + "\n");
  EXPECT_EQ(serve.log().find("hf_serve_token"), std::string::npos);
}

// GAP (src/serve/server.cpp, handle_resolve): `hubcache serve` answers a ranged GET of
// an LFS file's /resolve/ URL with 416 instead of the Hub's 302 (cpp-httplib applies the
// Range to the redirect's own body). Whole-repo downloads GET /resolve/<commit>/<file>,
// so a resumed one against hubcache serve restarts from zero, and clients that fetch
// chunks through /resolve/ (hf-hub's tokio downloader) fail. Fix: clear req.ranges
// before the 302, as send_file() does. Enable when fixed.
TEST(SnapshotServe, ARangedGetOfAnLfsResolveUrlIsStillTheRedirect) {
  TempDir dir;
  write_file(dir / "m/w.bin", test_bytes(300'000, 50));
  auto r = run_cli({"import", (dir / "m").string(), "--repo", "org/m", "--cache-dir", (dir / "served").string(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ServeProcess serve(dir / "served");
  httplib::Client client(serve.url());
  auto res = client.Get("/org/m/resolve/main/w.bin", {{"Range", "bytes=100000-"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 302);
  EXPECT_TRUE(res->has_header("Location"));
}
