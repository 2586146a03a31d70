// Security promises of docs/reliability.md, each proven on the real CLI binary:
// file names that escape the repo folder, symlinks planted in the cache, the
// token (never shown, never sent elsewhere), TLS verification, and `hubcache
// serve` facing hostile URLs. Idle connections, slow readers and huge headers
// against serve are in tests/e2e/serve_test.cpp (ServeRobustness).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "layout/naming.hpp"
#include "support/fault_server.hpp"
#include "support/fs_faults.hpp"
#include "support/serve_process.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache;
using namespace hubcache::test;
namespace fs = std::filesystem;

namespace {

class Security : public ::testing::Test {
 protected:
  FaultServer server;
  TempDir dir;
  fs::path cache() const { return dir / "cache"; }
  fs::path outside() const { return dir / "outside"; }
  void SetUp() override { fs::create_directories(outside()); }
  Env env() const {
    return {{"HF_ENDPOINT", server.url()},    {"HF_HUB_CACHE", cache().string()}, {"HF_HOME", (dir / "home").string()},
            {"HUBCACHE_RETRY_BASE_MS", "10"}, {"HF_HUB_ETAG_TIMEOUT", "5"},       {"HF_HUB_DOWNLOAD_TIMEOUT", "5"}};
  }
  RunResult cli(const std::vector<std::string>& args, const Env& extra = {}) const {
    auto e = env();
    for (const auto& [k, v] : extra) e[k] = v;
    return run_cli(args, e, std::chrono::seconds(60));
  }
  fs::path repo_dir(const std::string& repo) const { return cache() / layout::repo_folder_name(repo, RepoType::model); }
  // Everything under outside(), with contents: what a test compares before and after.
  std::map<std::string, std::string> outside_state() const {
    std::map<std::string, std::string> out;
    for (auto& e : fs::recursive_directory_iterator(outside()))
      out[e.path().lexically_relative(outside()).string()] =
          e.is_regular_file()
              ? std::to_string(e.file_size()) + " bytes, sha256 " + util::sha256_hex(read_file(e.path()))
              : "a folder";
    return out;
  }
};

std::string shown(const std::map<std::string, std::string>& state) {
  std::string s;
  for (const auto& [k, v] : state) s += k + " (" + v + ") ";
  return s;
}

// `name` looked up in PATH (run() executes a path, not a name).
std::string in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    auto end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    fs::path candidate = fs::path(dirs.substr(start, end - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return name;
}

}  // namespace

// ---- names that escape the repo folder ----------------------------------------------------

const std::vector<std::string> kEscapingNames = {"../escape.txt",
                                                 "a/../../escape.txt",
                                                 "..",
                                                 "/etc/passwd",
                                                 "//server/share/x.txt",
                                                 "C:/escape.txt",
                                                 "c:escape.txt",
                                                 "C:\\escape.txt",
                                                 "\\\\server\\share\\x.txt",
                                                 "a\\..\\..\\escape.txt",
                                                 "./a.txt",
                                                 "a//b.txt",
                                                 "a/./b.txt",
                                                 std::string("a\0b", 3)};

TEST_F(Security, UserFileNamesThatEscapeAreRefusedBeforeAnyRequestOrWrite) {
  server.add_file("org/m", "a.txt", "fine");
  for (const auto& name : kEscapingNames) {
    if (name.find('\0') != std::string::npos) continue;  // cannot be an argv entry
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"download", "org/m", name},
          std::vector<std::string>{"download", "org/m", "a.txt", name},
          std::vector<std::string>{"download", "org/m", name, "--local-dir", (dir / "local").string()},
          std::vector<std::string>{"download", "hf://org/m/" + name},
          std::vector<std::string>{"path", "org/m", name}}) {
      auto r = cli(args);
      EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
      EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
    }
  }
  EXPECT_TRUE(server.log().empty()) << server.log().size() << " requests, first " << server.log().front().target;
  EXPECT_FALSE(fs::exists(cache())) << "nothing written";
  EXPECT_FALSE(fs::exists(dir / "local"));
  EXPECT_TRUE(outside_state().empty());
}

TEST_F(Security, UserRepoIdsAndRevisionsThatEscapeAreRefusedBeforeAnyRequestOrWrite) {
  server.add_file("org/m", "a.txt", "fine");
  for (std::string repo : {"../escape", "org/..", "../../x", "/etc", "org/../../x", "org\\x", "..", "org/a/b"}) {
    auto r = cli({"download", repo, "a.txt"});
    EXPECT_EQ(r.exit_code, 2) << repo << ": " << r.err;
    r = cli({"download", repo});
    EXPECT_EQ(r.exit_code, 2) << repo << ": " << r.err;
  }
  for (std::string rev : {"../../../escape", "refs/../../x", "/abs", "a//b", "a\\b", ".."}) {
    auto r = cli({"download", "org/m", "a.txt", "--revision", rev});
    EXPECT_EQ(r.exit_code, 2) << rev << ": " << r.err;
    r = cli({"download", "org/m", "--revision", rev});
    EXPECT_EQ(r.exit_code, 2) << rev << ": " << r.err;
  }
  EXPECT_TRUE(server.log().empty()) << server.log().size() << " requests";
  EXPECT_FALSE(fs::exists(cache())) << "nothing written";
  EXPECT_TRUE(outside_state().empty());
}

TEST_F(Security, ServerFileNamesThatEscapeAreRefusedBeforeAnyWrite) {
  for (std::size_t i = 0; i < kEscapingNames.size(); ++i) {
    const std::string repo = "org/evil" + std::to_string(i);
    server.add_file(repo, "a.txt", "fine");
    server.add_file(repo, kEscapingNames[i], "escaped!");
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"download", repo},
          std::vector<std::string>{"download", repo, "--local-dir", (dir / "local" / std::to_string(i)).string()}}) {
      auto r = cli(args);
      EXPECT_EQ(r.exit_code, 8) << ::testing::PrintToString(kEscapingNames[i]) << ": " << r.err;
      EXPECT_NE(r.err.find("unsafe file name"), std::string::npos) << r.err;
    }
    EXPECT_FALSE(fs::exists(repo_dir(repo) / "snapshots")) << ::testing::PrintToString(kEscapingNames[i]);
    EXPECT_FALSE(fs::exists(repo_dir(repo) / "blobs")) << ::testing::PrintToString(kEscapingNames[i]);
    EXPECT_FALSE(fs::exists(dir / "local" / std::to_string(i) / "a.txt")) << "refused before any file";
  }
  EXPECT_TRUE(outside_state().empty()) << shown(outside_state());
  EXPECT_FALSE(fs::exists(dir / "escape.txt"));
  EXPECT_FALSE(fs::exists(cache() / "escape.txt"));
}

TEST_F(Security, ServerEtagOrCommitThatCouldEscapeIsRefusedBeforeAnyWrite) {
  server.add_file("org/m", "w.bin", "lfs bytes", true);
  server.add_file("org/m", "a.txt", "regular");
  for (std::string etag : {"../../../outside/x", "..", "../x", "a/b", "a\\b"}) {
    FaultServer::Faults f;
    f.fake_etag = etag;
    server.set_faults(f);
    for (const char* file : {"w.bin", "a.txt"}) {
      auto r = cli({"download", "org/m", file});
      EXPECT_EQ(r.exit_code, 8) << etag << " " << file << ": " << r.err;
      EXPECT_NE(r.err.find("ETag"), std::string::npos) << r.err;
    }
  }
  for (const std::string& commit : std::vector<std::string>{"../../../outside", std::string(40, '.'),
                                                            "0123456789012345678901234567890123456789/.."}) {
    FaultServer::Faults f;
    f.fake_commit = commit;
    server.set_faults(f);
    auto r = cli({"download", "org/m", "a.txt"});
    EXPECT_EQ(r.exit_code, 13) << commit << ": " << r.err;
    r = cli({"download", "org/m"});
    EXPECT_EQ(r.exit_code, 13) << commit << ": " << r.err;
  }
  EXPECT_TRUE(outside_state().empty()) << shown(outside_state());
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(repo_dir("org/m") / "blobs", ec) || !fs::exists(repo_dir("org/m") / "blobs"));
}

// ---- symlinks planted in the cache ---------------------------------------------------------

class PlantedSymlink : public Security {
 protected:
  std::string commit;
  const std::string weights = test_bytes(200'000, 31);
  void SetUp() override {
    Security::SetUp();
    server.add_file("org/m", "a.txt", "first file");
    server.add_file("org/m", "dir/w.bin", weights, true);
    server.add_file("org/m", "w.bin", weights, true);
    server.add_file("org/m", "nested/sub/deep.bin", test_bytes(1000, 35), true);
    commit = server.commit_of("org/m");
    // A cache that exists (the folders an attacker sharing it could plant into).
    ASSERT_EQ(cli({"download", "org/m", "a.txt"}).exit_code, 0);
    write_file(outside() / "victim", "the victim's own bytes");
  }
  fs::path snapshot() const { return repo_dir("org/m") / "snapshots" / commit; }
  std::string etag() const { return util::sha256_hex(weights); }
};

TEST_F(PlantedSymlink, FolderInASnapshotPointingOutsideIsNotWrittenThrough) {
  fs::create_directory_symlink(outside(), snapshot() / "dir");
  const auto before = outside_state();
  auto r = cli({"download", "org/m", "dir/w.bin"});
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state()) << r.err;
  EXPECT_NE(r.exit_code, 0) << "refused: " << r.out;
  EXPECT_NE(r.err.find("symlink"), std::string::npos) << r.err;
  r = cli({"download", "org/m"});
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state()) << r.err;
}

// Bug exposed in the download engine (src/transfer/download.cpp): before the blob is
// fetched, the engine creates the pointer's folders with create_directories, which
// follows the planted symlink and makes `sub/` outside the cache (the store then
// refuses to link the file).
TEST_F(PlantedSymlink, FolderUnderAPlantedFolderIsNotCreatedOutside) {
  fs::create_directory_symlink(outside(), snapshot() / "nested");
  const auto before = outside_state();
  auto r = cli({"download", "org/m", "nested/sub/deep.bin"});
  EXPECT_NE(r.exit_code, 0) << "refused: " << r.out;
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state()) << r.err;
}

TEST_F(PlantedSymlink, SnapshotFolderPointingOutsideIsNotWrittenThrough) {
  fs::remove_all(snapshot());
  fs::create_directory_symlink(outside(), snapshot());
  const auto before = outside_state();
  auto r = cli({"download", "org/m", "w.bin"});
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state()) << r.err;
  r = cli({"download", "org/m"});
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state()) << r.err;
}

TEST_F(PlantedSymlink, BlobPointingOutsideIsReplacedNotWrittenThrough) {
  fs::create_directories(repo_dir("org/m") / "blobs");
  fs::create_symlink(outside() / "not-there-yet", repo_dir("org/m") / "blobs" / etag());
  const auto before = outside_state();
  auto r = cli({"download", "org/m", "w.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), weights);
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state());
  EXPECT_FALSE(fs::is_symlink(repo_dir("org/m") / "blobs" / etag())) << "the planted link was replaced";

  // Planted over an existing blob, then a forced download: still never written through.
  fs::remove(repo_dir("org/m") / "blobs" / etag());
  fs::create_symlink(outside() / "victim", repo_dir("org/m") / "blobs" / etag());
  r = cli({"download", "org/m", "w.bin", "--force-download"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state());
  EXPECT_EQ(read_file(last_line(r.out)), weights);
}

// Bug exposed in the download engine (src/transfer/download.cpp): a partial download
// is adopted for resume by renaming it and opening it for writing, following a
// planted symlink, so the rest of the blob is written into the symlink's target.
TEST_F(PlantedSymlink, PartialDownloadPointingOutsideIsNotWrittenThrough) {
  const auto blobs = repo_dir("org/m") / "blobs";
  fs::create_directories(blobs);
  const auto partial = blobs / (etag() + ".0badc0de.incomplete");
  write_file(outside() / "victim", std::string(50'000, 'v'));
  fs::create_symlink(outside() / "victim", partial);
  write_file(
      fs::path(partial.string() + ".resume"),
      nlohmann::json{{"etag", etag()}, {"size", weights.size()}, {"url", server.cdn_url() + "/" + etag()}}.dump());
  const auto before = outside_state();
  auto r = cli({"download", "org/m", "w.bin"});
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), weights);
}

TEST_F(PlantedSymlink, LockFilePointingOutsideIsNotWrittenThrough) {
  const auto locks = cache() / ".locks" / layout::repo_folder_name("org/m", RepoType::model);
  fs::create_directories(locks);
  fs::create_symlink(outside() / "created-by-lock", locks / (etag() + ".lock"));
  const auto before = outside_state();
  auto r = cli({"download", "org/m", "w.bin"});
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state()) << r.err;
}

TEST_F(PlantedSymlink, RefAndTreeListingPointingOutsideAreReplacedNotWrittenThrough) {
  fs::remove(repo_dir("org/m") / "refs/main");
  fs::create_symlink(outside() / "victim", repo_dir("org/m") / "refs/main");
  fs::create_directories(repo_dir("org/m") / "trees");
  fs::create_symlink(outside() / "victim", repo_dir("org/m") / "trees" / (commit + ".json"));
  const auto before = outside_state();
  auto r = cli({"download", "org/m"});
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state()) << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(repo_dir("org/m") / "refs/main"), commit);
}

TEST_F(PlantedSymlink, MissingFileMarkerPointingOutsideIsNotWrittenThrough) {
  fs::create_directories(repo_dir("org/m") / ".no_exist" / commit);
  fs::create_symlink(outside() / "created-by-marker", repo_dir("org/m") / ".no_exist" / commit / "missing.txt");
  fs::create_directory_symlink(outside(), repo_dir("org/m") / ".no_exist" / commit / "sub");
  const auto before = outside_state();
  auto r = cli({"download", "org/m", "missing.txt"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  r = cli({"download", "org/m", "sub/missing.txt"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_EQ(outside_state(), before) << "written through: " << shown(outside_state());
}

// ---- the token ------------------------------------------------------------------------------

namespace {
constexpr const char* kToken = "hf_S3cretTokenNeverToBeSeen0123456789";

// Every file under `root` whose bytes contain `needle`.
std::vector<std::string> files_containing(const fs::path& root, const std::string& needle) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_regular_file() && !it->is_symlink() && read_file(it->path()).find(needle) != std::string::npos)
      out.push_back(it->path().string());
  return out;
}
}  // namespace

TEST_F(Security, TokenIsNeverPrintedLoggedOrPutInAnError) {
  server.add_file("org/m", "a.txt", "public");
  server.add_file("org/m", "w.bin", test_bytes(300'000, 32), true);
  server.add_file("org/private", "a.txt", "secret data");
  server.set_private("org/private", "hf_the_right_one");
  server.add_file("org/gated", "a.txt", "x");
  server.set_gated("org/gated");
  write_file(dir / "home/token", std::string(kToken) + "\n");

  struct Case {
    std::string what;
    std::vector<std::string> args;
    Env env;
    std::function<void()> arrange;
  };
  auto faults = [this](auto set) {
    return [this, set] {
      FaultServer::Faults f;
      set(f);
      server.set_faults(f);
    };
  };
  const std::vector<Case> cases = {
      {"success, HF_TOKEN", {"download", "org/m", "a.txt"}, {{"HF_TOKEN", kToken}}, nullptr},
      {"success, token file", {"download", "org/m", "w.bin", "--format", "json"}, {}, nullptr},
      {"success, --token", {"download", "org/m", "--token", kToken}, {}, nullptr},
      {"rejected token", {"download", "org/private", "a.txt"}, {{"HF_TOKEN", kToken}}, nullptr},
      {"rejected --token", {"download", "org/private", "a.txt", "--token", kToken}, {}, nullptr},
      {"gated", {"download", "org/gated", "a.txt"}, {{"HF_TOKEN", kToken}}, nullptr},
      {"missing file", {"download", "org/m", "nope.txt"}, {{"HF_TOKEN", kToken}}, nullptr},
      {"missing revision", {"download", "org/m", "a.txt", "--revision", "nope"}, {{"HF_TOKEN", kToken}}, nullptr},
      {"unreachable",
       {"download", "org/m", "b.txt"},
       {{"HF_TOKEN", kToken}, {"HF_ENDPOINT", "http://127.0.0.1:9"}},
       nullptr},
      {"503 storm",
       {"download", "org/m", "w.bin", "--force-download"},
       {{"HF_TOKEN", kToken}, {"HUBCACHE_MAX_RETRIES", "1"}},
       faults([](auto& f) {
         f.fail_count = 100;
         f.fail_status = 503;
       })},
      {"wrong bytes", {"download", "org/m", "w.bin", "--force-download"}, {{"HF_TOKEN", kToken}}, faults([](auto& f) {
         f.wrong_bytes = true;
       })},
      {"redirect loop", {"download", "org/m", "w.bin", "--force-download"}, {{"HF_TOKEN", kToken}}, faults([](auto& f) {
         f.cdn_redirect_loop = true;
       })},
      {"disk full",
       {"download", "org/m", "w.bin", "--force-download"},
       with_fs_faults({{"HF_TOKEN", kToken}}, {{"WRITE", "ENOSPC:1000@/blobs/"}}),
       nullptr},
      {"env", {"env"}, {{"HF_TOKEN", kToken}}, nullptr},
      {"env json", {"env", "--format", "json"}, {}, nullptr},
      {"ls", {"ls", "--format", "json"}, {{"HF_TOKEN", kToken}}, nullptr},
      {"bad flag", {"download", "org/m", "--token", kToken, "--no-such-flag"}, {}, nullptr},
  };
  for (const auto& c : cases) {
    server.set_faults({});
    if (c.arrange) c.arrange();
    auto r = cli(c.args, c.env);
    EXPECT_EQ(r.out.find(kToken), std::string::npos) << c.what << " printed the token: " << r.out;
    EXPECT_EQ(r.err.find(kToken), std::string::npos) << c.what << " printed the token: " << r.err;
    EXPECT_EQ(r.err.find("S3cret"), std::string::npos) << c.what << " printed part of the token: " << r.err;
  }
  EXPECT_TRUE(files_containing(cache(), "S3cret").empty())
      << "the token was written into the cache: " << ::testing::PrintToString(files_containing(cache(), "S3cret"));
}

TEST_F(Security, TokenIsNeverSentToAnotherHostAlongARedirectChain) {
  // hub -> its CDN -> a second CDN (reached as "localhost") -> a third one.
  FaultServer second, third;
  const auto data = test_bytes(200'000, 33);
  for (auto* s : {&server, &second, &third}) s->add_file("org/m", "w.bin", data, true);
  FaultServer::Faults f;
  f.cdn_redirect_to = "http://localhost:" + second.cdn_url().substr(second.cdn_url().rfind(':') + 1);
  server.set_faults(f);
  f.cdn_redirect_to = third.cdn_url();
  second.set_faults(f);
  auto r = cli({"download", "org/m", "w.bin"}, {{"HF_TOKEN", kToken}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  ASSERT_EQ(third.count("GET", "/", "cdn"), 1u) << "the chain was followed to its end";
  bool hub_auth = false;
  for (const auto* s : {&server, &second, &third})
    for (const auto& q : s->log()) {
      if (q.server == "hub" && s == &server) hub_auth = hub_auth || q.authorization;
      if (q.server == "cdn" || s != &server) {
        EXPECT_FALSE(q.authorization) << q.server << " " << q.target;
      }
    }
  EXPECT_TRUE(hub_auth) << "the Hub itself did get the token";
}

// A CDN that redirects back to the Hub's own host: the token dropped on the hop to the
// CDN is not added back (Python's requests and httpx never re-add it). One file of a
// single stream, one large enough for several connections (later ranges go straight
// to the URL learnt from the chain), and a whole-repo download (which starts at the
// resolve URL, on the Hub, with the token).
TEST_F(Security, TokenDroppedOnTheHopToTheCdnIsNotAddedBackWhenTheChainReturnsToTheHub) {
  const auto small = test_bytes(200'000, 34), large = test_bytes(9u << 20, 35);
  server.add_file("org/m", "w.bin", small, true);
  server.add_file("org/m", "big.bin", large, true);
  FaultServer::Faults f;
  f.cdn_redirect_to = server.url() + "/cdn-on-hub";
  server.set_faults(f);
  auto check = [&](const std::string& what) {
    std::size_t back_on_hub = 0;
    bool head_auth = false;
    for (const auto& q : server.log()) {
      if (q.server == "hub" && q.method == "HEAD") head_auth = head_auth || q.authorization;
      if (q.target.rfind("/cdn-on-hub/", 0) == 0) {
        ++back_on_hub;
        EXPECT_FALSE(q.authorization) << what << ": the token came back at " << q.target;
      }
      if (q.server == "cdn") {
        EXPECT_FALSE(q.authorization) << what << ": the CDN got the token at " << q.target;
      }
    }
    EXPECT_GT(back_on_hub, 0u) << what << ": the chain came back to the Hub";
    return head_auth;
  };
  auto r = cli({"download", "org/m", "w.bin"}, {{"HF_TOKEN", kToken}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), small);
  EXPECT_TRUE(check("one stream")) << "the Hub's HEAD did get the token";

  server.clear_log();
  r = cli({"download", "org/m", "big.bin", "--connections", "4"}, {{"HF_TOKEN", kToken}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), large);
  check("four connections");
  EXPECT_GE(server.count("GET", "/cdn-on-hub/", "hub"), 2u) << "several ranges came from the Hub's host";

  fs::remove_all(cache());
  server.clear_log();
  r = cli({"download", "org/m"}, {{"HF_TOKEN", kToken}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  check("whole repo");
  bool resolve_auth = false;
  for (const auto& q : server.log())
    if (q.server == "hub" && q.method == "GET" && q.target.find("/resolve/") != std::string::npos)
      resolve_auth = resolve_auth || q.authorization;
  EXPECT_TRUE(resolve_auth) << "the resolve URL on the Hub got the token";
}

TEST_F(Security, CommandLineTokenWorksButTheHelpRecommendsHfToken) {
  // download_test (PrivateRepoNeedsTheTokenWhichIsNeverPrinted) shows --token works.
  auto r = cli({"download", "--help"});
  ASSERT_EQ(r.exit_code, 0);
  auto pos = r.out.find("--token");
  ASSERT_NE(pos, std::string::npos) << r.out;
  auto line = r.out.substr(pos, r.out.find('\n', pos) - pos);
  EXPECT_NE(line.find("HF_TOKEN"), std::string::npos) << line;
  EXPECT_NE(line.find("process lists"), std::string::npos) << line;
}

// ---- TLS ------------------------------------------------------------------------------------

namespace {

// A CA and a server certificate for 127.0.0.1 (or another name), made with the
// openssl command-line tool, and a minimal Hub over HTTPS (cpp-httplib's SSLServer)
// serving one regular file.
class TlsHub {
 public:
  TlsHub(const fs::path& dir, const std::string& san) {
    auto ossl = [&](const std::vector<std::string>& args) {
      std::vector<std::string> argv{in_path("openssl")};
      argv.insert(argv.end(), args.begin(), args.end());
      auto r = run(argv);
      if (r.exit_code != 0) throw std::runtime_error("openssl " + args[0] + ": " + r.err);
    };
    const auto d = dir.string();
    write_file(dir / "ext.cnf", "subjectAltName=" + san +
                                    "\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                                    "extendedKeyUsage=serverAuth\n");
    ossl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
          d + "/ca.key", "-out", d + "/ca.pem", "-days", "2", "-subj", "/CN=hubcache test CA"});
    ossl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", d + "/server.key",
          "-out", d + "/server.csr", "-subj", "/CN=hubcache test server"});
    ossl({"x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key", "-CAcreateserial",
          "-out", d + "/server.pem", "-days", "2", "-extfile", d + "/ext.cnf"});
    ca_ = dir / "ca.pem";
    server_ = std::make_unique<httplib::SSLServer>((dir / "server.pem").c_str(), (dir / "server.key").c_str());
    if (!server_->is_valid()) throw std::runtime_error("SSLServer could not load its certificate");
    auto serve = [this](const httplib::Request& req, httplib::Response& res) {
      requests_++;
      if (req.path != "/org/m/resolve/main/a.txt") {
        res.status = 404;
        return;
      }
      res.set_header("X-Repo-Commit", std::string(40, 'c'));
      res.set_header("ETag", "\"" + util::git_blob_sha1_hex(kContent) + "\"");
      if (req.method == "HEAD")
        res.set_header("Content-Length", std::to_string(std::string(kContent).size()));
      else
        res.set_content(kContent, "application/octet-stream");
    };
    server_->Get(".*", serve);
    server_->set_pre_routing_handler([serve](const httplib::Request& req, httplib::Response& res) {
      if (req.method != "HEAD") return httplib::Server::HandlerResponse::Unhandled;
      serve(req, res);
      return httplib::Server::HandlerResponse::Handled;
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~TlsHub() {
    server_->stop();
    thread_.join();
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  const fs::path& ca() const { return ca_; }
  int requests() const { return requests_.load(); }
  static constexpr const char* kContent = "served over TLS\n";

 private:
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
  fs::path ca_;
  std::atomic<int> requests_{0};
};

// The environment for a run against `hub`: no CA setting inherited from the machine
// (CI images set SSL_CERT_FILE and friends to the system bundle), plus `extra`.
Env tls_env(const TlsHub& hub, const Env& extra = {}) {
  Env e{{"HF_ENDPOINT", hub.url()},
        {"SSL_CERT_FILE", std::nullopt},
        {"CURL_CA_BUNDLE", std::nullopt},
        {"REQUESTS_CA_BUNDLE", std::nullopt},
        {"SSL_CERT_DIR", std::nullopt}};
  for (const auto& [k, v] : extra) e[k] = v;
  return e;
}

}  // namespace

TEST_F(Security, TlsIsVerifiedAndACustomCaBundleIsHonoured) {
  fs::create_directories(dir / "tls");
  TlsHub hub(dir / "tls", "IP:127.0.0.1");
  auto r = cli({"download", "org/m", "a.txt"}, tls_env(hub, {{"HUBCACHE_MAX_RETRIES", "1"}}));
  EXPECT_EQ(r.exit_code, 9) << r.err;
  EXPECT_NE(r.err.find("TLS verification failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SSL_CERT_FILE"), std::string::npos) << "says what to do: " << r.err;
  EXPECT_EQ(hub.requests(), 0) << "no request got through the failed handshake";

  for (const char* var : {"SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"}) {
    fs::remove_all(cache());
    r = cli({"download", "org/m", "a.txt"}, tls_env(hub, {{var, hub.ca().string()}}));
    ASSERT_EQ(r.exit_code, 0) << var << ": " << r.err;
    EXPECT_EQ(read_file(last_line(r.out)), TlsHub::kContent);
  }
}

TEST_F(Security, TlsCertificateForAnotherNameIsRefusedEvenFromATrustedCa) {
  fs::create_directories(dir / "tls");
  TlsHub hub(dir / "tls", "DNS:somewhere-else.invalid");
  auto r = cli({"download", "org/m", "a.txt"},
               tls_env(hub, {{"SSL_CERT_FILE", hub.ca().string()}, {"HUBCACHE_MAX_RETRIES", "1"}}));
  EXPECT_EQ(r.exit_code, 9) << r.err;
  EXPECT_EQ(hub.requests(), 0);
}

TEST_F(Security, ThereIsNoSilentWayToTurnTlsVerificationOff) {
  fs::create_directories(dir / "tls");
  TlsHub hub(dir / "tls", "IP:127.0.0.1");
  // Variables that disable verification in other tools (an empty CURL_CA_BUNDLE did so
  // in Python requests), and flags a user might try.
  const std::vector<Env> envs = {{{"CURL_CA_BUNDLE", ""}},
                                 {{"REQUESTS_CA_BUNDLE", ""}},
                                 {{"SSL_CERT_FILE", ""}},
                                 {{"SSL_CERT_FILE", "/dev/null"}},
                                 {{"CURL_CA_BUNDLE", "/nonexistent/ca.pem"}},
                                 {{"HF_HUB_DISABLE_SSL_VERIFICATION", "1"}},
                                 {{"HUBCACHE_INSECURE", "1"}},
                                 {{"CURL_INSECURE", "1"}},
                                 {{"PYTHONHTTPSVERIFY", "0"}},
                                 {{"GIT_SSL_NO_VERIFY", "1"}},
                                 {{"NODE_TLS_REJECT_UNAUTHORIZED", "0"}}};
  for (const auto& extra : envs) {
    Env e = tls_env(hub, extra);
    e["HUBCACHE_MAX_RETRIES"] = "0";
    auto r = cli({"download", "org/m", "a.txt"}, e);
    EXPECT_NE(r.exit_code, 0) << extra.begin()->first << " turned verification off";
    EXPECT_EQ(r.exit_code, 9) << extra.begin()->first << ": " << r.err;
  }
  for (const char* flag : {"--insecure", "-k", "--no-verify", "--no-check-certificate"}) {
    auto r = cli({"download", "org/m", "a.txt", flag}, tls_env(hub));
    EXPECT_EQ(r.exit_code, 2) << flag << " is not a flag: " << r.err;
  }
  EXPECT_EQ(hub.requests(), 0);
  EXPECT_FALSE(fs::exists(repo_dir("org/m") / "snapshots"));
}

// ---- hubcache serve against hostile URLs -----------------------------------------------------

namespace {

// One raw HTTP/1.1 request on a fresh connection (exact bytes: no client-side
// normalisation); returns the whole response, or "" when the server closed first.
std::string raw_request(int port, const std::string& method, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.c_str() + 9);
}

}  // namespace

TEST(ServeSecurity, PathTraversalAndPlantedSymlinksNeverReachOutsideTheCache) {
  TempDir dir;
  const std::string secret = "TOP-SECRET-" + util::sha256_hex("outside");
  write_file(dir / "outside/secret.txt", secret);
  write_file(dir / "src/config.json", "{}\n");
  write_file(dir / "src/model.onnx", test_bytes(200'000, 34));
  auto r = run_cli({"import", (dir / "src").string(), "--repo", "org/model", "--cache-dir", (dir / "cache").string(),
                    "--lfs-threshold", "100000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string commit = last_line(r.out);
  const auto repo = dir / "cache/models--org--model";
  // Planted: a pointer and a blob that lead outside the cache.
  fs::create_symlink(dir / "outside/secret.txt", repo / "snapshots" / commit / "leak.txt");
  fs::create_directory_symlink(dir / "outside", repo / "snapshots" / commit / "leakdir");
  fs::create_symlink(dir / "outside/secret.txt", repo / "blobs" / util::sha256_hex(secret));
  ServeProcess serve(dir / "cache", {"--no-access-log"});

  // The CDN port, from an LFS redirect.
  auto head = raw_request(serve.port(), "HEAD", "/org/model/resolve/main/model.onnx");
  auto loc = head.find("Location: http://");
  ASSERT_NE(loc, std::string::npos) << head;
  auto port_start = head.find(':', loc + 17) + 1;
  const int cdn_port = std::atoi(head.c_str() + port_start);
  ASSERT_GT(cdn_port, 0) << head;

  const std::string up = "../../../../../../../..";
  const std::vector<std::string> hub_targets = {
      "/org/model/resolve/main/" + up + "/outside/secret.txt",
      "/org/model/resolve/main/..%2f..%2f..%2f..%2f..%2f..%2foutside%2fsecret.txt",
      "/org/model/resolve/main/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/outside/secret.txt",
      "/org/model/resolve/main/%252e%252e/%252e%252e/%252e%252e/%252e%252e/outside/secret.txt",
      "/org/model/resolve/main/..%5c..%5c..%5c..%5c..%5c..%5coutside%5csecret.txt",
      "/org/model/resolve/main/%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/outside/secret.txt",
      "/org/model/resolve/main/config.json%00/../../../../outside/secret.txt",
      "/org/model/resolve/main/" + (dir / "outside/secret.txt").string(),
      "/org/model/resolve/main/%2F" + (dir / "outside/secret.txt").string().substr(1),
      "/org/model/resolve/main/leak.txt",
      "/org/model/resolve/main/leakdir/secret.txt",
      "/org/model/resolve/" + up + "/main/secret.txt",
      "/org/model/resolve/..%2f..%2f..%2f..%2f/secret.txt",
      "/org/..%2f..%2f..%2foutside/resolve/main/secret.txt",
      "/..%2f..%2f/outside/resolve/main/secret.txt",
      "/datasets/..%2f..%2foutside/x/resolve/main/secret.txt",
      "/api/models/org/model/tree/main/..%2f..%2f..%2f..%2f..%2foutside",
      "/api/models/org/model/tree/main/leakdir",
      "/api/models/org/model/tree/..%2f..%2f..%2f",
      "/api/models/org/model/revision/..%2f..%2f..%2f..%2foutside",
      "/api/models/..%2f..%2f..%2foutside/x/revision/main",
      "/api/models/org/model/paths-info/main",
  };
  for (const auto& t : hub_targets) {
    for (const char* method : {"GET", "HEAD"}) {
      auto resp = raw_request(serve.port(), method, t);
      EXPECT_EQ(resp.find(secret), std::string::npos) << method << " " << t << " leaked the file outside the cache";
      EXPECT_EQ(resp.find("TOP-SECRET"), std::string::npos) << method << " " << t;
      const int status = status_of(resp);
      EXPECT_GE(status, 400) << method << " " << t << " -> " << resp.substr(0, 200);
    }
  }
  for (const std::string& t : std::vector<std::string>{
           "/" + util::sha256_hex(secret), "/../../outside/secret.txt", "/..%2f..%2foutside%2fsecret.txt",
           "/" + util::sha256_hex(secret) + "/../../../outside/secret.txt"}) {
    auto resp = raw_request(cdn_port, "GET", t);
    EXPECT_EQ(resp.find("TOP-SECRET"), std::string::npos) << "CDN " << t << " leaked the file outside the cache";
    EXPECT_GE(status_of(resp), 400) << "CDN " << t << " -> " << resp.substr(0, 200);
  }
  // Still up, still serving.
  auto ok = raw_request(serve.port(), "GET", "/org/model/resolve/main/config.json");
  EXPECT_EQ(status_of(ok), 200) << ok;
  EXPECT_NE(ok.find("\r\n\r\n{}\n"), std::string::npos) << ok;
  EXPECT_EQ(serve.stop(SIGTERM), 0);
}
