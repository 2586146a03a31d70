// `hubcache download` online: the real CLI against a live local Hub + CDN that
// can misbehave on demand (tests/support/fault_server).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "layout/naming.hpp"
#include "support/cli_fixture.hpp"
#include "support/fault_server.hpp"
#include "support/test_support.hpp"
#include "transfer/journal.hpp"
#include "util/hash.hpp"


using namespace hubcache;
using namespace hubcache::test;
namespace fs = std::filesystem;

namespace {

class Download : public CliAgainstFaultServer {};

}  // namespace

TEST_F(Download, RegularAndLfsFilesLandExactlyAsPythonWritesThem) {
  const std::string cfg = "{\"a\": 1}\n";
  const std::string weights = test_bytes(300000, 1);
  server.add_file("org/model", "config.json", cfg);
  server.add_file("org/model", "onnx/model.onnx", weights, true);
  const auto commit = server.commit_of("org/model");

  auto r = cli({"download", "org/model", "config.json"}, {{"HF_TOKEN", "hf_secret_token_1"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto cfg_path = repo_dir("org/model") / "snapshots" / commit / "config.json";
  EXPECT_EQ(last_line(r.out), cfg_path.string());
  EXPECT_EQ(fs::read_symlink(cfg_path).string(), "../../blobs/" + util::git_blob_sha1_hex(cfg));
  EXPECT_EQ(read_file(repo_dir("org/model") / "refs/main"), commit) << "exactly 40 bytes, no newline";

  r = cli({"download", "org/model", "onnx/model.onnx", "-q"}, {{"HF_TOKEN", "hf_secret_token_1"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto onnx = repo_dir("org/model") / "snapshots" / commit / "onnx/model.onnx";
  EXPECT_EQ(r.out, onnx.string() + "\n");
  EXPECT_EQ(fs::read_symlink(onnx).string(), "../../../blobs/" + util::sha256_hex(weights));
  EXPECT_EQ(read_file(onnx), weights);
  EXPECT_TRUE(fs::exists(dir / "cache/CACHEDIR.TAG"));
  EXPECT_TRUE(fs::exists(dir / "cache/.locks/models--org--model" / (util::sha256_hex(weights) + ".lock")));
  EXPECT_TRUE(leftovers("org/model").empty());
  EXPECT_EQ(r.err.find("hf_secret_token_1"), std::string::npos);

  // The token went to the Hub and never to the CDN (another port).
  bool hub_auth = false, cdn_seen = false;
  for (const auto& q : server.log()) {
    if (q.server == "hub") hub_auth = hub_auth || q.authorization;
    if (q.server == "cdn") {
      cdn_seen = true;
      EXPECT_FALSE(q.authorization) << q.target;
    }
  }
  EXPECT_TRUE(hub_auth);
  EXPECT_TRUE(cdn_seen);
}

TEST_F(Download, HitsCostOneHeadOrNothing) {
  server.add_file("org/m", "a.txt", "hello");
  const auto commit = server.commit_of("org/m");
  ASSERT_EQ(cli({"download", "org/m", "a.txt"}).exit_code, 0);
  server.clear_log();
  auto r = cli({"download", "org/m", "a.txt"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.count("HEAD", "/resolve/"), 1u);
  EXPECT_EQ(server.count("GET", ""), 0u);
  server.clear_log();
  r = cli({"download", "org/m", "a.txt", "--max-age", "3600"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = cli({"download", "org/m", "a.txt", "--revision", commit});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(server.log().empty()) << "max-age hit and cached commit send nothing";
}

// --max-age answers a known-missing file from the cache as it answers a cached one:
// with refs/main fresh and a .no_exist marker for its commit, exit 7 and no request.
TEST_F(Download, MaxAgeAnswersAKnownMissingFileWithoutARequest) {
  server.add_file("org/m", "a.txt", "hello");
  auto r = cli({"download", "org/m", "missing.txt"});
  ASSERT_EQ(r.exit_code, 7) << r.err;
  ASSERT_TRUE(fs::exists(repo_dir("org/m") / ".no_exist" / server.commit_of("org/m") / "missing.txt"));
  server.clear_log();
  r = cli({"download", "org/m", "missing.txt", "--max-age", "3600"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(".no_exist"), std::string::npos) << r.err;
  EXPECT_TRUE(server.log().empty()) << server.log().size() << " request(s), first: " << server.log()[0].method << " "
                                    << server.log()[0].target;
  // Without --max-age the Hub is asked again, as Python does.
  r = cli({"download", "org/m", "missing.txt"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_EQ(server.count("HEAD", "/resolve/main/missing.txt"), 1u);
}

TEST_F(Download, OfflineSendsNothingAtAll) {
  server.add_file("org/m", "a.txt", "hello");
  auto r = cli({"download", "org/m", "a.txt"}, {{"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 3);
  ASSERT_EQ(cli({"download", "org/m", "a.txt"}).exit_code, 0);
  server.clear_log();
  r = cli({"download", "org/m", "a.txt"}, {{"HF_HUB_OFFLINE", "1"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(server.log().empty());
}

TEST_F(Download, EveryErrorClassHasItsExitCodeAndAnActionableMessage) {
  server.add_file("org/m", "a.txt", "hello");
  server.add_file("org/gated", "a.txt", "x");
  server.set_gated("org/gated");
  auto r = cli({"download", "org/missing", "a.txt"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("HF_TOKEN"), std::string::npos) << r.err;
  r = cli({"download", "org/gated", "a.txt"});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_NE(r.err.find(server.url() + "/org/gated"), std::string::npos) << r.err;
  r = cli({"download", "org/m", "a.txt", "--revision", "nope"});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.err.find("'nope'"), std::string::npos) << r.err;
  r = cli({"download", "org/m", "adapter.json"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("adapter.json"), std::string::npos) << r.err;
  const auto commit = server.commit_of("org/m");
  EXPECT_TRUE(fs::is_regular_file(repo_dir("org/m") / ".no_exist" / commit / "adapter.json"));
  EXPECT_EQ(read_file(repo_dir("org/m") / "refs/main"), commit);
  // Known missing is answered offline too.
  r = cli({"path", "org/m", "adapter.json"});
  EXPECT_EQ(r.exit_code, 7);
}

TEST_F(Download, PrivateRepoNeedsTheTokenWhichIsNeverPrinted) {
  server.add_file("org/private", "a.txt", "secret data");
  server.set_private("org/private", "hf_right_token");
  auto r = cli({"download", "org/private", "a.txt"});
  EXPECT_EQ(r.exit_code, 4);
  r = cli({"download", "org/private", "a.txt"}, {{"HF_TOKEN", "hf_right_token"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = cli({"download", "org/private", "a.txt", "--force-download", "--token", "hf_right_token"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = cli({"download", "org/private", "a.txt", "--force-download", "--token", "hf_wrong_token"});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.err.find("hf_wrong_token"), std::string::npos);
}

TEST_F(Download, RenamedRepoFollowsTheRelativeRedirect) {
  server.add_file("org/new-name", "a.txt", "moved");
  server.add_rename("org/old-name", "org/new-name");
  auto r = cli({"download", "org/old-name", "a.txt"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), "moved");
  EXPECT_NE(last_line(r.out).find("models--org--old-name"), std::string::npos);
}

TEST_F(Download, WrongBytesAreRefusedAndNothingIsPublished) {
  server.add_file("org/m", "w.bin", test_bytes(100000, 2), true);
  server.add_file("org/m", "t.txt", "regular text file");
  FaultServer::Faults f;
  f.wrong_bytes = true;
  server.set_faults(f);
  for (const char* file : {"w.bin", "t.txt"}) {
    auto r = cli({"download", "org/m", file});
    EXPECT_EQ(r.exit_code, 8) << file << r.err;
    EXPECT_NE(r.err.find("Integrity check failed"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(repo_dir("org/m") / "snapshots" / server.commit_of("org/m") / file));
  }
  EXPECT_TRUE(leftovers("org/m").empty());
  EXPECT_TRUE(fs::is_empty(repo_dir("org/m") / "blobs"));
  server.set_faults({});
  EXPECT_EQ(cli({"download", "org/m", "w.bin"}).exit_code, 0);
}

TEST_F(Download, LyingSizeIsAnIntegrityError) {
  server.add_file("org/m", "w.bin", test_bytes(50000, 3), true);
  FaultServer::Faults f;
  f.lie_size = 40000;
  server.set_faults(f);
  auto r = cli({"download", "org/m", "w.bin"});
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_TRUE(leftovers("org/m").empty());
}

TEST_F(Download, DroppedConnectionResumesInTheSameRun) {
  const auto data = test_bytes(2'000'000, 4);
  server.add_file("org/m", "big.bin", data, true);
  FaultServer::Faults f;
  f.reset_after = 700'000;
  f.reset_count = 1;
  server.set_faults(f);
  auto r = cli({"download", "org/m", "big.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  bool resumed = false;
  for (const auto& q : server.log())
    if (q.server == "cdn" && q.range.rfind("bytes=", 0) == 0 && q.range != "bytes=0-") resumed = true;
  EXPECT_TRUE(resumed) << "a Range request continued the transfer";
  EXPECT_LT(server.body_bytes_sent(), data.size() + data.size() / 2);
}

TEST_F(Download, TwoHundredToARangeRequestRestartsCleanly) {
  const auto data = test_bytes(1'000'000, 5);
  server.add_file("org/m", "big.bin", data, true);
  FaultServer::Faults f;
  f.reset_after = 300'000;
  f.reset_count = 1;
  f.ignore_range = true;
  server.set_faults(f);
  auto r = cli({"download", "org/m", "big.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
}

TEST_F(Download, ServerErrorStormsAreRetriedThenReported) {
  server.add_file("org/m", "a.txt", "after the storm");
  FaultServer::Faults f;
  f.fail_count = 3;
  f.fail_status = 503;
  server.set_faults(f);
  auto r = cli({"download", "org/m", "a.txt"});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  f.fail_count = 2;
  f.fail_status = 429;
  f.retry_after = "1";
  server.set_faults(f);
  r = cli({"download", "org/m", "a.txt", "--force-download"});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  f.fail_count = 1000;
  f.fail_status = 503;
  f.retry_after = "";
  server.set_faults(f);
  r = cli({"download", "org/m", "b.txt"}, {{"HUBCACHE_MAX_RETRIES", "2"}});
  EXPECT_EQ(r.exit_code, 9) << r.err;
  EXPECT_NE(r.err.find("503"), std::string::npos) << r.err;
}

TEST_F(Download, NetworkFailureFallsBackToTheCachedCopy) {
  server.add_file("org/m", "a.txt", "cached");
  ASSERT_EQ(cli({"download", "org/m", "a.txt"}).exit_code, 0);
  // Nothing listens on port 9 of loopback.
  auto r = cli({"download", "org/m", "a.txt"}, {{"HF_ENDPOINT", "http://127.0.0.1:9"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), "cached");
  r = cli({"download", "org/m", "other.txt"}, {{"HF_ENDPOINT", "http://127.0.0.1:9"}, {"HUBCACHE_MAX_RETRIES", "1"}});
  EXPECT_EQ(r.exit_code, 3) << "unreachable and not cached: " << r.err;
  EXPECT_NE(r.err.find("HF_HUB_OFFLINE"), std::string::npos) << r.err;
}

TEST_F(Download, RedirectLoopAndMissingCommitHeaderAreClearErrors) {
  server.add_file("org/m", "w.bin", "lfs bytes", true);
  server.add_file("org/m", "a.txt", "a");
  FaultServer::Faults f;
  f.cdn_redirect_loop = true;
  server.set_faults(f);
  auto r = cli({"download", "org/m", "w.bin"});
  EXPECT_EQ(r.exit_code, 9) << r.err;
  EXPECT_NE(r.err.find("redirects"), std::string::npos) << r.err;
  f = {};
  f.no_commit_header = true;
  server.set_faults(f);
  r = cli({"download", "org/m", "a.txt"});
  EXPECT_EQ(r.exit_code, 13) << r.err;
  EXPECT_NE(r.err.find("X-Repo-Commit"), std::string::npos) << r.err;
}

TEST_F(Download, NoSymlinkModeMovesNewBlobsAndCopiesExistingOnes) {
  server.add_file("org/m", "a.bin", "same content", true);
  server.add_file("org/m", "b.bin", "same content", true);
  auto r = cli({"download", "org/m", "a.bin"}, {{"HF_HUB_DISABLE_SYMLINKS", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto a = fs::path(last_line(r.out));
  EXPECT_FALSE(fs::is_symlink(a));
  EXPECT_EQ(read_file(a), "same content");
  EXPECT_FALSE(fs::exists(repo_dir("org/m") / "blobs" / util::sha256_hex("same content"))) << "moved";
  r = cli({"download", "org/m", "b.bin"}, {{"HF_HUB_DISABLE_SYMLINKS", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::is_symlink(last_line(r.out)));
  EXPECT_EQ(read_file(last_line(r.out)), "same content");
}

TEST_F(Download, ConcurrentProcessesShareOneDownload) {
  const auto data = test_bytes(3'000'000, 6);
  server.add_file("org/m", "shared.bin", data, true);
  FaultServer::Faults f;
  f.trickle_bps = 6'000'000;  // about half a second on the wire
  server.set_faults(f);
  std::vector<std::thread> threads;
  std::vector<RunResult> results(8);
  for (int i = 0; i < 8; ++i) threads.emplace_back([&, i] { results[i] = cli({"download", "org/m", "shared.bin"}); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_file(last_line(r.out)), data);
  }
  std::size_t blobs = 0;
  for (auto& e : fs::directory_iterator(repo_dir("org/m") / "blobs")) {
    (void)e;
    ++blobs;
  }
  EXPECT_EQ(blobs, 1u);
  EXPECT_LE(server.count("GET", "/", "cdn"), 2u) << "the body crossed the wire about once";
  EXPECT_LE(server.body_bytes_sent(), 2 * data.size());
  EXPECT_TRUE(leftovers("org/m").empty());
}

// The JSON's "downloaded" says whether this process moved the bytes. Process A
// holds the blob's lock mid-download (stopped with SIGSTOP so the order is certain);
// process B plans the whole repo (the blob is not there yet), then waits on the lock
// (its lock file is open). Once A publishes, B finds the blob and transfers nothing:
// "downloaded": false for that file, true for the one it fetched itself.
TEST_F(Download, JsonDownloadedIsFalseForABlobAnotherProcessPublishedWhileThisOneWaited) {
  const auto data = test_bytes(600'000, 17);
  server.add_file("org/m", "big.bin", data, true);
  server.add_file("org/m", "small.txt", "small");
  FaultServer::Faults f;
  f.trickle_bps = 1'000'000;
  server.set_faults(f);
  const auto blobs = repo_dir("org/m") / "blobs";
  const fs::path lock =
      dir / "cache/.locks" / layout::repo_folder_name("org/m", RepoType::model) / (util::sha256_hex(data) + ".lock");
  const auto a_out = dir / "a.out", b_out = dir / "b.out";
  // A long read timeout: the seconds A spends stopped must not count as a stalled range.
  pid_t a = spawn_cli({"download", "org/m", "--include", "big.bin", "--format", "json"},
                      env_with({{"HF_HUB_DOWNLOAD_TIMEOUT", "120"}}), a_out);
  bool partial = false;
  for (int i = 0; i < 1000 && !partial; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::error_code ec;
    for (auto& e : fs::directory_iterator(blobs, ec)) partial = partial || e.path().extension() == ".incomplete";
  }
  ASSERT_TRUE(partial) << "A started its download";
  ::kill(a, SIGSTOP);
  pid_t b = spawn_cli({"download", "org/m", "--format", "json"}, env(), b_out);
  // B waits for A's lock once it holds the lock file open.
  auto b_holds_lock_file = [&] {
    std::error_code ec;
    for (auto& e : fs::directory_iterator("/proc/" + std::to_string(b) + "/fd", ec))
      if (fs::read_symlink(e.path(), ec) == lock) return true;
    return false;
  };
  bool waiting = false;
  for (int i = 0; i < 2000 && !(waiting = b_holds_lock_file()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(a, SIGCONT);
  int a_status = 0, b_status = 0;
  ::waitpid(a, &a_status, 0);
  ::waitpid(b, &b_status, 0);
  ASSERT_TRUE(waiting) << "B reached the blob's lock while A held it";
  ASSERT_TRUE(WIFEXITED(a_status) && WEXITSTATUS(a_status) == 0) << read_file(a_out);
  ASSERT_TRUE(WIFEXITED(b_status) && WEXITSTATUS(b_status) == 0) << read_file(b_out);
  auto a_json = nlohmann::json::parse(last_line(read_file(a_out)));
  auto b_json = nlohmann::json::parse(last_line(read_file(b_out)));
  ASSERT_EQ(a_json["files"].size(), 1u) << a_json;
  EXPECT_TRUE(a_json["files"][0]["downloaded"].get<bool>()) << a_json;
  std::map<std::string, bool> downloaded;
  for (const auto& file : b_json["files"]) downloaded[file["file"]] = file["downloaded"].get<bool>();
  EXPECT_EQ(downloaded, (std::map<std::string, bool>{{"big.bin", false}, {"small.txt", true}})) << b_json;
  EXPECT_EQ(read_file(repo_dir("org/m") / "snapshots" / server.commit_of("org/m") / "big.bin"), data);
  EXPECT_EQ(server.count("GET", "/", "cdn"), 1u) << "the body crossed the wire once, for A";
  EXPECT_TRUE(leftovers("org/m").empty());
}

// A run killed within its first 50 ms leaves a sized temp file and no journal yet
// (the engine writes the first one 50 ms in). The next run claims it, trusts none of
// its bytes, and leaves nothing behind.
TEST_F(Download, SizedPartialWithoutAJournalIsReusedNotLeftBehind) {
  const auto data = test_bytes(200'000, 12);
  const auto etag = util::sha256_hex(data);
  server.add_file("org/m", "w.bin", data, true);
  const auto blobs = repo_dir("org/m") / "blobs";
  fs::create_directories(blobs);
  write_file(blobs / (etag + ".0badc0de.incomplete"), std::string(data.size(), 'x'));  // garbage, right size
  write_file(blobs / (etag + ".5ca1ab1e.incomplete"), std::string(10, 'y'));  // another size: not ours to claim

  auto r = cli({"download", "org/m", "w.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  EXPECT_EQ(server.body_bytes_sent(), data.size()) << "every byte fetched: none of the partial was trusted";
  EXPECT_FALSE(fs::exists(blobs / (etag + ".0badc0de.incomplete")));
  EXPECT_EQ(leftovers("org/m"), std::vector<std::string>{etag + ".5ca1ab1e.incomplete"});
}

TEST_F(Download, KilledDownloadResumesNextRunWithOnlyTheRest) {
  const auto data = test_bytes(4'000'000, 7);
  server.add_file("org/m", "model.safetensors", data, true);
  FaultServer::Faults f;
  f.trickle_bps = 2'000'000;
  server.set_faults(f);

  const pid_t pid = start({"download", "org/m", "model.safetensors", "-q"});
  ASSERT_GT(pid, 0);

  // Wait until part of the body has crossed the wire, then kill -9.
  for (int i = 0; i < 400 && server.body_bytes_sent() < 1'500'000; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  // The temp file is sized up front; its journal says how much of it is there.
  std::uint64_t partial = 0;
  for (auto& p : fs::directory_iterator(repo_dir("org/m") / "blobs"))
    if (p.path().extension() == ".incomplete")
      if (auto j = transfer::parse_journal(read_file(transfer::sidecar_of(p.path())), fs::file_size(p.path())))
        partial = j->done.prefix_end();
  ASSERT_GE(partial, 500'000u);
  EXPECT_FALSE(fs::exists(repo_dir("org/m") / "snapshots" / server.commit_of("org/m") / "model.safetensors"));

  server.set_faults({});
  server.clear_log();
  auto r = cli({"download", "org/m", "model.safetensors"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  std::string range;
  for (const auto& q : server.log())
    if (q.server == "cdn") range = q.range;
  ASSERT_EQ(range.rfind("bytes=", 0), 0u) << "the re-run asked only for the rest";
  EXPECT_GE(std::stoull(range.substr(6)), 500'000u);
  EXPECT_LE(server.body_bytes_sent(), data.size() - 500'000);
  EXPECT_TRUE(leftovers("org/m").empty());
}

TEST_F(Download, FlatLayoutDownloadsToRepoSlashFile) {
  server.add_file("facebook/sam", "onnx/encoder.onnx", test_bytes(10000, 8), true);
  auto r = cli(
      {"download", "facebook/sam", "onnx/encoder.onnx", "--layout", "flat", "--cache-dir", (dir / "flat").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), (dir / "flat/facebook/sam/onnx/encoder.onnx").string());
  EXPECT_EQ(read_file(last_line(r.out)), test_bytes(10000, 8));
}
