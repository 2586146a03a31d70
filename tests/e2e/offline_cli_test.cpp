// The CLI binary against fixture caches: offline download, path, env.
#include <gtest/gtest.h>

#include "support/fixtures.hpp"
#include "support/test_support.hpp"

using namespace hubcache::test;

namespace {
const std::string kSnap = std::string("models--xiaoyao9184--image-faulty/snapshots/") + kSeedCommit;
}

TEST(OfflineCli, SeedPreDownloadCommandPrintsTheSnapshotFolder) {
  TempDir dir;
  auto cache = dir / "cache/huggingface/hub";
  build_seed_cache(cache);
  // The seed's own command, spelled the same way, offline.
  auto r = run_cli({"download", kSeedRepo, "--repo-type", "model", "--revision", "main", "--cache-dir",
                    cache.string()},
                   {{"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), (cache / kSnap).string());
}

TEST(OfflineCli, OneFilePrintsItsSnapshotPathAndQuietPrintsOnlyIt) {
  TempDir dir;
  build_seed_cache(dir.path());
  auto r = run_cli({"download", kSeedRepo, "corner_model.onnx", "--cache-dir", dir.path().string(), "--offline"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), (dir.path() / kSnap / "corner_model.onnx").string());
  r = run_cli({"download", kSeedRepo, "info.txt", "-q"}, {{"HF_HUB_CACHE", dir.path().string()},
                                                          {"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (dir.path() / kSnap / "info.txt").string() + "\n");
  r = run_cli({"download", kSeedRepo, "info.txt", "--format", "json", "--offline"},
              {{"HF_HOME", dir.path().string() + "/nowhere"}, {"HF_HUB_CACHE", dir.path().string()}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"path\":"), std::string::npos);
}

TEST(OfflineCli, CacheRootComesFromTheEnvironment) {
  TempDir dir;
  build_seed_cache(dir / "hfhome/hub");
  auto r = run_cli({"path", kSeedRepo, "README.md"}, {{"HF_HOME", (dir / "hfhome").string()}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), (dir / "hfhome/hub" / kSnap / "README.md").string());
  build_seed_cache(dir / "xdg/huggingface/hub");
  r = run_cli({"path", kSeedRepo, "README.md"}, {{"XDG_CACHE_HOME", (dir / "xdg").string()}});
  EXPECT_EQ(last_line(r.out), (dir / "xdg/huggingface/hub" / kSnap / "README.md").string());
  build_seed_cache(dir / "home/.cache/huggingface/hub");
  r = run_cli({"path", kSeedRepo, "README.md"}, {{"HOME", (dir / "home").string()}});
  EXPECT_EQ(last_line(r.out), (dir / "home/.cache/huggingface/hub" / kSnap / "README.md").string());
}

TEST(OfflineCli, MissNamesRepoFileRevisionAndExitsThree) {
  TempDir dir;
  build_seed_cache(dir.path());
  auto r = run_cli({"download", kSeedRepo, "nope.onnx", "--cache-dir", dir.path().string(), "--offline"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("nope.onnx"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(kSeedRepo), std::string::npos);
  EXPECT_NE(r.err.find("'main'"), std::string::npos);
  EXPECT_NE(r.err.find("hubcache download"), std::string::npos);
  EXPECT_TRUE(r.out.empty());

  r = run_cli({"path", kSeedRepo, "info.txt", "--revision", "dev", "--cache-dir", dir.path().string()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("refs/dev"), std::string::npos) << r.err;

  r = run_cli({"download", "other/repo", "--offline", "--cache-dir", dir.path().string()});
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST(OfflineCli, KnownMissingUpstreamExitsSeven) {
  TempDir dir;
  CacheBuilder b(dir.path(), "org/m");
  auto c = fake_commit(1);
  b.add_file(c, "config.json", "{}");
  b.set_ref("main", c);
  b.add_no_exist(c, "adapter_config.json");
  auto r = run_cli({"path", "org/m", "adapter_config.json", "--cache-dir", dir.path().string()});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos);
}

TEST(OfflineCli, BadInputExitsTwo) {
  TempDir dir;
  for (auto args : std::vector<std::vector<std::string>>{
           {"path", "a/b/c", "x"},
           {"path", "org/m", "../../etc/passwd"},
           {"download", "org/m", "x", "--repo-type", "kernel"},
           {"download"},
           {"frobnicate"}}) {
    args.push_back("--cache-dir");
    args.push_back(dir.path().string());
    auto r = run_cli(args, {{"HF_HUB_OFFLINE", "1"}});
    EXPECT_EQ(r.exit_code, 2) << args[0] << " " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "bad input writes nothing";
}

TEST(OfflineCli, OfflineLookupsWriteNothing) {
  TempDir dir;
  build_seed_cache(dir.path());
  auto count = [&] {
    std::size_t n = 0;
    for (auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
      (void)e;
      ++n;
    }
    return n;
  };
  auto before = count();
  run_cli({"download", kSeedRepo, "info.txt", "--cache-dir", dir.path().string(), "--offline"});
  run_cli({"download", kSeedRepo, "nope", "--cache-dir", dir.path().string(), "--offline"});
  run_cli({"path", kSeedRepo, "info.txt", "--cache-dir", dir.path().string()});
  EXPECT_EQ(count(), before);
}

TEST(OfflineCli, EnvShowsSettingsButNeverTheToken) {
  TempDir dir;
  auto r = run_cli({"env"}, {{"HF_TOKEN", "hf_supersecretvalue123"},
                             {"HF_HUB_CACHE", dir.path().string()},
                             {"HF_ENDPOINT", "http://127.0.0.1:1/"},
                             {"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("supersecret"), std::string::npos);
  EXPECT_EQ(r.err.find("supersecret"), std::string::npos);
  EXPECT_NE(r.out.find("set (from HF_TOKEN)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(dir.path().string()), std::string::npos);
  EXPECT_NE(r.out.find("http://127.0.0.1:1"), std::string::npos);
  EXPECT_NE(r.out.find("offline:          yes"), std::string::npos);
  r = run_cli({"env", "--format", "json"}, {{"HF_TOKEN", "hf_supersecretvalue123"}});
  EXPECT_EQ(r.out.find("supersecret"), std::string::npos);
  EXPECT_NE(r.out.find("\"token_set\": true"), std::string::npos) << r.out;
}

TEST(OfflineCli, FlatLayoutDownloadOffline) {
  TempDir dir;
  write_file(dir / "facebook/sam/onnx/enc.onnx", "x");
  auto r = run_cli({"download", "facebook/sam", "onnx/enc.onnx", "--layout", "flat", "--cache-dir",
                    dir.path().string(), "--offline", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), (dir / "facebook/sam/onnx/enc.onnx").string());
}
