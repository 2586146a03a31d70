// Whole-repo downloads (`hubcache download REPO`) against a live local Hub.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "layout/naming.hpp"
#include "support/fault_server.hpp"
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
    return {{"HF_ENDPOINT", server.url()},
            {"HF_HUB_CACHE", (dir / "cache").string()},
            {"HUBCACHE_RETRY_BASE_MS", "10"}};
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
  auto tree = nlohmann::json::parse(read_file(dir / "cache/models--org--big/trees" / (server.commit_of("org/big") + ".json")));
  EXPECT_EQ(tree["format_version"], 1);
  EXPECT_EQ(tree["files"].size(), files.size());
  EXPECT_EQ(tree["files"]["README.md"]["blob_id"], util::git_blob_sha1_hex("# readme"));
  EXPECT_EQ(tree["files"]["dir0/sub0/file0.bin"]["lfs_sha256"], util::sha256_hex(files["dir0/sub0/file0.bin"]));

  server.clear_log();
  r = cli({"download", "org/big"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.count("GET", "/resolve/"), 0u) << "no file GET on an up-to-date snapshot";
  EXPECT_EQ(server.count("HEAD", "/resolve/"), 0u);
  EXPECT_EQ(server.count("GET", "/tree/"), 0u) << "the tree of a commit is cached";
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
  for (std::size_t a = 0, b; (b = meta.find('\n', a)) != std::string::npos; a = b + 1) lines.push_back(meta.substr(a, b - a));
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
