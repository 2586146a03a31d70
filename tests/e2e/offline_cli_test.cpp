// The CLI binary against fixture caches: offline download, path, env.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <tuple>

#include "hubcache/hubcache.hpp"
#include "layout/naming.hpp"
#include "support/fixtures.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache::test;

namespace {
const std::string kSnap = std::string("models--xiaoyao9184--image-faulty/snapshots/") + kSeedCommit;
}

TEST(OfflineCli, SeedPreDownloadCommandPrintsTheSnapshotFolder) {
  TempDir dir;
  auto cache = dir / "cache/huggingface/hub";
  build_seed_cache(cache);
  // The seed's own command, spelled the same way, offline.
  auto r = run_cli({"download", kSeedRepo, "--repo-type", "model", "--revision", "main", "--cache-dir", cache.string()},
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
  r = run_cli({"download", kSeedRepo, "info.txt", "-q"},
              {{"HF_HUB_CACHE", dir.path().string()}, {"HF_HUB_OFFLINE", "1"}});
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
  for (auto args : std::vector<std::vector<std::string>>{{"path", "a/b/c", "x"},
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
  auto r = run_cli({"download", "facebook/sam", "onnx/enc.onnx", "--layout", "flat", "--cache-dir", dir.path().string(),
                    "--offline", "-q"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), (dir / "facebook/sam/onnx/enc.onnx").string());
}

// ---------------------------------------------------------------------------
// Every cache shape that exists, each lookup asserted through the library and
// through the CLI binary (path, download --offline), then again on a read-only copy.

namespace {

namespace fs = std::filesystem;

struct Shapes {
  std::string c1, c2, c3, c4;
  std::map<std::string, std::string> content;  // "<repo>:<file>" -> bytes
};

Shapes build_every_shape(const fs::path& root) {
  Shapes s;
  s.c1 = fake_commit(101);
  s.c2 = fake_commit(102);
  s.c3 = fake_commit(103);
  s.c4 = fake_commit(104);
  build_seed_cache(root);
  CacheBuilder m(root, "org/m");
  auto add = [&](CacheBuilder& b, const std::string& repo, const std::string& commit, const std::string& file,
                 const std::string& bytes, bool lfs, CacheBuilder::LinkStyle style) {
    s.content[repo + ":" + file] = bytes;
    return b.add_file(commit, file, bytes, lfs, style);
  };
  using LS = CacheBuilder::LinkStyle;
  add(m, "org/m", s.c1, "config.json", "{\"a\": 1}\n", false, LS::relative);
  add(m, "org/m", s.c1, "a/b/c/nested.json", "[1, 2]\n", false, LS::relative);
  add(m, "org/m", s.c1, "onnx/abs.onnx", "absolute link (v0.13)", true, LS::absolute);
  add(m, "org/m", s.c1, "copy.txt", "a real file (no-symlink mode)", false, LS::real_file);
  add(m, "org/m", s.c1, "model.safetensors", "through the shared store", true, LS::shared_store);
  auto gone = add(m, "org/m", s.c1, "gone.bin", "its blob was deleted", true, LS::relative);
  fs::remove(m.repo_dir() / "blobs" / gone);
  // A download that never finished: a leftover .incomplete and no pointer (Python
  // creates the pointer only after the rename).
  write_file(m.repo_dir() / "blobs" / (hubcache::util::sha256_hex("partial") + ".0badc0de.incomplete"), "part");
  write_file(m.repo_dir() / "blobs" / (hubcache::util::sha256_hex("legacy") + ".incomplete"), "legacy partial");
  write_file(m.repo_dir() / "trees" / (s.c1 + ".json"), "{\"format_version\": 1, \"files\": {}}");
  m.add_no_exist(s.c1, "adapter_config.json");
  m.add_no_exist(s.c1, "sub/optional.json");
  m.set_ref("main", s.c1);
  write_file(m.repo_dir() / "refs/v1.0", s.c1 + "\n");  // another tool's trailing newline
  add(m, "org/m", s.c2, "pr.txt", "from a pull request", false, LS::relative);
  m.set_ref("refs/pr/1", s.c2);
  add(m, "org/m", s.c3, "detached.txt", "no ref points here", false, LS::relative);
  CacheBuilder d(root, "google/fleurs", hubcache::RepoType::dataset);
  add(d, "google/fleurs", s.c4, "data/a b.json", "[]\n", false, LS::relative);
  d.set_ref("main", s.c4);
  CacheBuilder sp(root, "org/demo", hubcache::RepoType::space);
  add(sp, "org/demo", s.c4, "app.py", "print('hi')\n", false, LS::relative);
  sp.set_ref("main", s.c4);
  return s;
}

enum class Want { cached, missing_upstream, not_cached };

struct Case {
  std::string repo;
  hubcache::RepoType type;
  std::string revision;
  std::string file;
  Want want;
  std::string commit;  // the commit the revision resolves to; "" when not known offline
};

std::vector<Case> every_case(const Shapes& s) {
  using hubcache::RepoType;
  const std::string seed = kSeedCommit;
  return {
      {kSeedRepo, RepoType::model, "main", "corner_model.onnx", Want::cached, seed},
      {kSeedRepo, RepoType::model, "main", "README.md", Want::cached, seed},
      {kSeedRepo, RepoType::model, seed, "info.txt", Want::cached, seed},
      {kSeedRepo, RepoType::model, "main", "missing.onnx", Want::not_cached, seed},
      {kSeedRepo, RepoType::model, "dev", "info.txt", Want::not_cached, ""},
      {"org/m", RepoType::model, "main", "config.json", Want::cached, s.c1},
      {"org/m", RepoType::model, "main", "a/b/c/nested.json", Want::cached, s.c1},
      {"org/m", RepoType::model, "main", "onnx/abs.onnx", Want::cached, s.c1},
      {"org/m", RepoType::model, "main", "copy.txt", Want::cached, s.c1},
      {"org/m", RepoType::model, "main", "model.safetensors", Want::cached, s.c1},
      {"org/m", RepoType::model, "v1.0", "config.json", Want::cached, s.c1},
      {"org/m", RepoType::model, "main", "gone.bin", Want::not_cached, s.c1},
      {"org/m", RepoType::model, "main", "partial.bin", Want::not_cached, s.c1},
      {"org/m", RepoType::model, "main", "a/b", Want::not_cached, s.c1},  // a folder is not a file
      {"org/m", RepoType::model, "main", "adapter_config.json", Want::missing_upstream, s.c1},
      {"org/m", RepoType::model, s.c1, "sub/optional.json", Want::missing_upstream, s.c1},
      {"org/m", RepoType::model, "refs/pr/1", "pr.txt", Want::cached, s.c2},
      {"org/m", RepoType::model, "main", "pr.txt", Want::not_cached, s.c1},  // never another revision's file
      {"org/m", RepoType::model, s.c3, "detached.txt", Want::cached, s.c3},
      {"org/m", RepoType::model, "refs/pr/2", "pr.txt", Want::not_cached, ""},
      {"google/fleurs", RepoType::dataset, "main", "data/a b.json", Want::cached, s.c4},
      {"google/fleurs", RepoType::model, "main", "data/a b.json", Want::not_cached, ""},  // wrong type
      {"org/demo", RepoType::space, "main", "app.py", Want::cached, s.c4},
  };
}

std::string type_name(hubcache::RepoType t) { return std::string(hubcache::to_string(t)); }

// Asserts one case through the library and the CLI; `root` is the cache.
void check_case(const fs::path& root, const Case& c, const Shapes& s) {
  SCOPED_TRACE(c.repo + " (" + type_name(c.type) + ") @" + c.revision + " : " + c.file);
  hubcache::Options o;
  o.cache_dir = root;
  o.repo_type = c.type;
  o.revision = c.revision;
  o.offline = true;
  const fs::path folder = root / hubcache::layout::repo_folder_name(c.repo, c.type);
  const fs::path expected = folder / "snapshots" / c.commit / c.file;

  // The library.
  auto found = hubcache::lookup(c.repo, c.file, o);
  EXPECT_EQ(found.commit, c.commit);
  EXPECT_EQ(hubcache::is_cached(c.repo, c.file, o), c.want == Want::cached);
  auto where = hubcache::path(c.repo, c.file, o);
  EXPECT_EQ(where.has_value(), !c.commit.empty());
  if (where) {
    EXPECT_EQ(*where, expected);
  }
  int lib_code = 0;
  try {
    auto p = hubcache::fetch(c.repo, c.file, o);
    EXPECT_EQ(p, expected);
    EXPECT_EQ(read_file(p),
              s.content.count(c.repo + ":" + c.file) ? s.content.at(c.repo + ":" + c.file) : "content of " + c.file);
  } catch (const hubcache::Error& e) {
    lib_code = hubcache::exit_code(e.code());
  }
  switch (c.want) {
    case Want::cached:
      EXPECT_EQ(found.status, hubcache::CacheLookup::Status::cached);
      EXPECT_EQ(found.path, expected);
      EXPECT_EQ(lib_code, 0);
      break;
    case Want::missing_upstream:
      EXPECT_EQ(found.status, hubcache::CacheLookup::Status::missing_upstream);
      EXPECT_EQ(lib_code, 7);
      break;
    case Want::not_cached:
      EXPECT_EQ(found.status, hubcache::CacheLookup::Status::unknown);
      EXPECT_EQ(lib_code, 3);
      break;
  }

  // The CLI: `path` and an offline `download`, in the seed's spelling of the flags.
  const int want_code = c.want == Want::cached ? 0 : c.want == Want::missing_upstream ? 7 : 3;
  auto r = run_cli({"path", c.repo, c.file, "--revision", c.revision, "--repo-type", type_name(c.type), "--cache-dir",
                    root.string()});
  EXPECT_EQ(r.exit_code, want_code) << r.err;
  r = run_cli({"download", c.repo, c.file, "--repo-type", type_name(c.type), "--revision", c.revision, "--cache-dir",
               root.string(), "-q"},
              {{"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, want_code) << r.err;
  if (want_code == 0) {
    EXPECT_EQ(r.out, expected.string() + "\n");
  } else {
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_NE(r.err.find(c.file), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.repo), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.revision), std::string::npos) << r.err;
  }
}

// A listing of every path under `dir` with symlink targets, to prove nothing was written.
std::map<std::string, std::string> snapshot_of_tree(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    auto rel = it->path().lexically_relative(dir).generic_string();
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    out[rel] = it->is_symlink() ? "-> " + fs::read_symlink(it->path()).string()
                                : std::to_string(st.st_size) + " " + std::to_string(st.st_mtime);
  }
  return out;
}

// Why user 'nobody' cannot run `cli` on the cache in `dir`, or "" when it can: a
// temp folder under a private TMPDIR, or a CLI whose libraries sit where only the
// owner can read them, are reasons to skip rather than to fail.
std::string why_nobody_cannot_run(const fs::path& cli, const fs::path& dir) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(90);
    if (::access(dir.c_str(), R_OK | X_OK) != 0) ::_exit(91);
    ::execl(cli.c_str(), cli.c_str(), "--version", static_cast<char*>(nullptr));
    ::_exit(92);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 90) return "cannot switch to user 'nobody' (uid 65534) here";
  if (code == 91)
    return "user 'nobody' cannot enter the test's temp folder " + dir.string() +
           " (set TMPDIR to a folder others can enter)";
  return "user 'nobody' cannot run a copy of the CLI at " + cli.string() + " (exit " + std::to_string(code) +
         "; its shared libraries may sit in a folder only their owner can enter)";
}

}  // namespace

TEST(OfflineCli, EveryCacheShapeThroughTheLibraryAndTheCli) {
  TempDir dir;
  auto shapes = build_every_shape(dir.path());
  const auto before = snapshot_of_tree(dir.path());
  for (const auto& c : every_case(shapes)) check_case(dir.path(), c, shapes);
  EXPECT_EQ(snapshot_of_tree(dir.path()), before) << "offline lookups write nothing";
}

TEST(OfflineCli, EveryCacheShapeInAReadOnlyCache) {
  TempDir dir;
  auto shapes = build_every_shape(dir.path());
  for (auto& e : fs::recursive_directory_iterator(dir.path()))
    if (e.is_directory() && !e.is_symlink()) ::chmod(e.path().c_str(), 0555);
  ::chmod(dir.path().c_str(), 0555);
  const auto before = snapshot_of_tree(dir.path());
  auto check_all = [&] {
    for (const auto& c : every_case(shapes)) check_case(dir.path(), c, shapes);
  };
  if (::geteuid() != 0) {
    ASSERT_NE(::access(dir.path().c_str(), W_OK), 0);
    check_all();
  } else {
    // root writes through any mode bits: run the library and the CLI as 'nobody'
    // in a child process, where the cache really is read-only. 'nobody' may not be
    // able to enter the build folder (a checkout under a 0700 folder, as `mktemp -d`
    // makes one): the child runs a copy of the CLI from a folder everyone can enter.
    TempDir bin;
    const fs::path cli = bin / "hubcache";
    fs::copy_file(cli_path(), cli);
    ::chmod(bin.path().c_str(), 0755);
    ::chmod(cli.c_str(), 0755);
    if (auto why = why_nobody_cannot_run(cli, dir.path()); !why.empty()) GTEST_SKIP() << why;
    EXPECT_EXIT(
        {
          if (::setgid(65534) != 0 || ::setuid(65534) != 0 || ::access(dir.path().c_str(), W_OK) == 0) std::_Exit(2);
          use_cli(cli);
          check_all();
          std::_Exit(::testing::Test::HasFailure() ? 1 : 0);
        },
        ::testing::ExitedWithCode(0), "");
  }
  EXPECT_EQ(snapshot_of_tree(dir.path()), before);
}

TEST(OfflineCli, WholeRevisionsOfflinePrintTheirSnapshotFolder) {
  TempDir dir;
  auto s = build_every_shape(dir.path());
  const fs::path m = dir.path() / "models--org--m/snapshots";
  const std::vector<std::tuple<std::vector<std::string>, fs::path>> cases = {
      {{"org/m"}, m / s.c1},
      {{"org/m", "--revision", "refs/pr/1"}, m / s.c2},
      {{"org/m", "--revision", s.c3}, m / s.c3},
      {{"org/m", "--revision", "v1.0"}, m / s.c1},
      {{"google/fleurs", "--repo-type", "dataset"}, dir.path() / "datasets--google--fleurs/snapshots" / s.c4},
      {{"org/demo", "--repo-type", "space"}, dir.path() / "spaces--org--demo/snapshots" / s.c4},
  };
  for (const auto& [args, expected] : cases) {
    std::vector<std::string> argv{"download"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--cache-dir", dir.path().string(), "--offline"});
    auto r = run_cli(argv);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << r.err;
    EXPECT_EQ(last_line(r.out), expected.string());
    hubcache::Options o;
    o.cache_dir = dir.path();
    o.offline = true;
    for (std::size_t i = 1; i + 1 < args.size(); i += 2) {
      if (args[i] == "--revision") o.revision = args[i + 1];
      if (args[i] == "--repo-type") o.repo_type = *hubcache::parse_repo_type(args[i + 1]);
    }
    EXPECT_EQ(hubcache::snapshot_path(args[0], o), expected);
  }
  auto r = run_cli({"download", "org/m", "--revision", "refs/pr/2", "--cache-dir", dir.path().string(), "--offline"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("refs/pr/2"), std::string::npos) << r.err;
}

// The fixture of seed 000 is exactly the tree its README shows: 5 directories,
// 14 files, the same blob names and the same relative link targets.
TEST(OfflineCli, SeedFixtureIsExactlyTheSeedTree) {
  TempDir dir;
  build_seed_cache(dir.path());
  const fs::path repo = dir.path() / "models--xiaoyao9184--image-faulty";
  const std::string c = kSeedCommit;
  std::map<std::string, std::string> expected = {
      {"blobs", "dir"},
      {"blobs/05ceaff0dd7a51ee0e94c932bbb2d16505dc9e744bff93c7d4da1b5498056032", "file"},
      {"blobs/7a2df50881906e67b5f5f3985a0ac20f288de4064163362fffa96ec01ecbc796", "file"},
      {"blobs/9f8f9aa5623e159f4f4be9a24453132112cc4a05", "file"},
      {"blobs/a118d0ca8c0e58e57c3a81d3b2e8e6a605080dc7", "file"},
      {"blobs/a6344aac8c09253b3b630fb776ae94478aa0275b", "file"},
      {"blobs/ec107f0c971df4745fc5b47256d06e6f45355e0f24f5245e92cd4e7eaba4ca53", "file"},
      {"blobs/f43fa4d3390a4efe97dd54529d96e2eaea3b841cb01abf1b6672a35eb6ffeffe", "file"},
      {"refs", "dir"},
      {"refs/main", "file"},
      {"snapshots", "dir"},
      {"snapshots/" + c, "dir"},
      {"snapshots/" + c + "/corner_model.onnx",
       "-> ../../blobs/ec107f0c971df4745fc5b47256d06e6f45355e0f24f5245e92cd4e7eaba4ca53"},
      {"snapshots/" + c + "/empty_v5_24_08_23.onnx",
       "-> ../../blobs/7a2df50881906e67b5f5f3985a0ac20f288de4064163362fffa96ec01ecbc796"},
      {"snapshots/" + c + "/info.txt", "-> ../../blobs/9f8f9aa5623e159f4f4be9a24453132112cc4a05"},
      {"snapshots/" + c + "/post_it_model.onnx",
       "-> ../../blobs/05ceaff0dd7a51ee0e94c932bbb2d16505dc9e744bff93c7d4da1b5498056032"},
      {"snapshots/" + c + "/README.md", "-> ../../blobs/a118d0ca8c0e58e57c3a81d3b2e8e6a605080dc7"},
      {"snapshots/" + c + "/writing_type_v1.onnx",
       "-> ../../blobs/f43fa4d3390a4efe97dd54529d96e2eaea3b841cb01abf1b6672a35eb6ffeffe"},
  };
  std::map<std::string, std::string> actual;
  for (auto it = fs::recursive_directory_iterator(repo); it != fs::recursive_directory_iterator(); ++it) {
    auto rel = it->path().lexically_relative(repo).generic_string();
    actual[rel] = it->is_symlink()     ? "-> " + fs::read_symlink(it->path()).string()
                  : it->is_directory() ? "dir"
                                       : "file";
  }
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(read_file(repo / "refs/main"), c) << "40 bytes, no newline";
  // Nothing else in the cache root but the repo folder.
  std::vector<std::string> top;
  for (auto& e : fs::directory_iterator(dir.path())) top.push_back(e.path().filename().string());
  EXPECT_EQ(top, std::vector<std::string>{"models--xiaoyao9184--image-faulty"});
}

// Layout::flat without --cache-dir: {root}/{repo}/{file} with the root under the user
// cache dir, $XDG_CACHE_HOME/<app>, else ~/.cache/<app> (the CLI's app is "hubcache").
TEST(OfflineCli, FlatLayoutRootDefaultsToTheUserCacheDir) {
  TempDir dir;
  write_file(dir / "xdg/hubcache/facebook/sam2.1-hiera-tiny/sam2.1_hiera_tiny.encoder.onnx", "enc");
  write_file(dir / "home/.cache/hubcache/facebook/sam2.1-hiera-tiny/onnx/decoder.onnx", "dec");
  auto r = run_cli({"download", "facebook/sam2.1-hiera-tiny", "sam2.1_hiera_tiny.encoder.onnx", "--layout", "flat",
                    "--offline", "-q"},
                   {{"XDG_CACHE_HOME", (dir / "xdg").string()}, {"HOME", (dir / "home").string()}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (dir / "xdg/hubcache/facebook/sam2.1-hiera-tiny/sam2.1_hiera_tiny.encoder.onnx").string() + "\n");
  r = run_cli({"path", "facebook/sam2.1-hiera-tiny", "onnx/decoder.onnx", "--layout", "flat"},
              {{"HOME", (dir / "home").string()}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (dir / "home/.cache/hubcache/facebook/sam2.1-hiera-tiny/onnx/decoder.onnx").string() + "\n");
  r = run_cli({"path", "facebook/sam2.1-hiera-tiny", "onnx/missing.onnx", "--layout", "flat"},
              {{"HOME", (dir / "home").string()}});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("onnx/missing.onnx"), std::string::npos) << r.err;
  // The hub cache root of the same environment is another folder entirely.
  r = run_cli({"env"}, {{"HOME", (dir / "home").string()}});
  EXPECT_NE(r.out.find((dir / "home/.cache/huggingface/hub").string()), std::string::npos) << r.out;
}
