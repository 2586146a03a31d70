// Large files over several connections: the real CLI against the fault-injecting
// Hub + CDN (tests/support/fault_server) and against `hubcache serve`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "layout/naming.hpp"
#include "support/cli_fixture.hpp"
#include "support/fault_server.hpp"
#include "support/serve_process.hpp"
#include "support/test_support.hpp"
#include "transfer/journal.hpp"
#include "util/hash.hpp"


using namespace hubcache;
using namespace hubcache::test;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t MiB = 1u << 20;

// "bytes=a-b" / "bytes=a-" -> a; npos when absent.
std::uint64_t range_start(const std::string& range) {
  if (range.rfind("bytes=", 0) != 0) return std::string::npos;
  return std::stoull(range.substr(6));
}

class Ranged : public CliAgainstFaultServer {
 protected:
  std::vector<FaultServer::LoggedRequest> cdn_gets() const {
    std::vector<FaultServer::LoggedRequest> out;
    for (const auto& q : server.log())
      if (q.server == "cdn" && q.method == "GET") out.push_back(q);
    return out;
  }
};

}  // namespace

TEST_F(Ranged, LargeFileComesOverSeveralRangesByteIdenticalWithoutAuthorizationOnTheCdn) {
  const auto data = test_bytes(20 * MiB + 12345, 11);
  server.add_file("org/m", "model.safetensors", data, true);
  FaultServer::Faults f;
  f.cdn_redirect_hop = true;  // the CDN redirects once more: learnt once, then ranges go straight there
  server.set_faults(f);
  auto r = cli({"download", "org/m", "model.safetensors", "--connections", "4"}, {{"HF_TOKEN", "hf_secret_tok"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  EXPECT_EQ(fs::read_symlink(last_line(r.out)).string(), "../../blobs/" + util::sha256_hex(data));
  EXPECT_TRUE(leftovers("org/m").empty());

  std::set<std::uint64_t> starts;
  std::size_t before_hop = 0;
  for (const auto& q : cdn_gets()) {
    EXPECT_FALSE(q.authorization) << "Authorization never goes to the CDN: " << q.target;
    ASSERT_NE(q.range, "") << "every CDN request of a large file is ranged: " << q.target;
    if (q.target.find("hop=1") == std::string::npos) {
      ++before_hop;
      EXPECT_EQ(q.status, 302);
    } else {
      EXPECT_EQ(q.status, 206) << q.range;
      starts.insert(range_start(q.range));
    }
  }
  EXPECT_EQ(before_hop, 1u) << "the redirect is followed once, not per range";
  EXPECT_GE(starts.size(), 4u) << "several ranges";
  EXPECT_TRUE(starts.count(0));
  EXPECT_EQ(server.count("GET", "/resolve/", "hub"), 0u) << "bytes come from the CDN, not the Hub";
  bool hub_auth = false;
  for (const auto& q : server.log())
    if (q.server == "hub") hub_auth = hub_auth || q.authorization;
  EXPECT_TRUE(hub_auth) << "the token does go to the Hub";
  // Bytes are fetched once; only a range split at the tail may waste what was in flight.
  EXPECT_LE(server.body_bytes_sent(), data.size() + data.size() / 4);
  EXPECT_EQ(r.err.find("hf_secret_tok"), std::string::npos);
}

TEST_F(Ranged, OneConnectionAndSmallFilesUseOnePlainStream) {
  const auto big = test_bytes(12 * MiB, 12);
  const auto small = test_bytes(2 * MiB, 13);
  server.add_file("org/m", "big.bin", big, true);
  server.add_file("org/m", "small.bin", small, true);
  auto r = cli({"download", "org/m", "big.bin", "--connections", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), big);
  auto gets = cdn_gets();
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].range, "") << "one plain GET";
  EXPECT_EQ(gets[0].status, 200);

  server.clear_log();
  r = cli({"download", "org/m", "small.bin"});  // default 8 connections, but a small file
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), small);
  gets = cdn_gets();
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].range, "");
  EXPECT_TRUE(leftovers("org/m").empty());

  r = cli({"download", "org/m", "big.bin", "--connections", "0"});
  EXPECT_EQ(r.exit_code, 2) << "connections must be 1 to 64";
}

TEST_F(Ranged, ServerIgnoringRangesFallsBackToOneStreamFromZero) {
  const auto data = test_bytes(12 * MiB, 14);
  server.add_file("org/m", "w.bin", data, true);
  FaultServer::Faults f;
  f.ignore_range = true;
  f.omit_accept_ranges = true;
  f.reset_after = 5 * MiB;  // and the one stream breaks once
  f.reset_count = 1;
  server.set_faults(f);
  auto r = cli({"download", "org/m", "w.bin", "--connections", "8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  auto gets = cdn_gets();
  ASSERT_EQ(gets.size(), 2u) << "one stream, broken once, no extra connections";
  EXPECT_NE(gets[0].range, "") << "the first request asked for a range (the probe)";
  EXPECT_EQ(gets[0].status, 200);
  EXPECT_EQ(gets[1].range, "") << "without Accept-Ranges the retry starts over without asking for a range";
  EXPECT_TRUE(leftovers("org/m").empty());
}

TEST_F(Ranged, StalledRangeIsRetriedAloneAndTheFileCompletes) {
  const auto data = test_bytes(12 * MiB, 15);
  server.add_file("org/m", "w.bin", data, true);
  FaultServer::Faults f;
  const std::uint64_t stall = 7 * MiB + 4321;
  f.offset_stall = static_cast<std::int64_t>(stall);
  f.offset_stall_ms = 4000;
  server.set_faults(f);
  auto r = cli({"download", "org/m", "w.bin", "--connections", "4"}, {{"HF_HUB_DOWNLOAD_TIMEOUT", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  std::size_t resumed_at_stall = 0;
  for (const auto& q : cdn_gets())
    if (range_start(q.range) == stall) ++resumed_at_stall;
  EXPECT_EQ(resumed_at_stall, 1u) << "the stalled range alone was asked again, from where it stopped";
  EXPECT_LE(server.body_bytes_sent(), data.size() + data.size() / 4);
  EXPECT_TRUE(leftovers("org/m").empty());
}

TEST_F(Ranged, WrongBytesInOneRangeAreAnIntegrityErrorWithNothingLeft) {
  const auto data = test_bytes(12 * MiB, 16);
  server.add_file("org/m", "w.bin", data, true);
  FaultServer::Faults f;
  f.corrupt_offset = 9 * MiB + 77;
  server.set_faults(f);
  auto r = cli({"download", "org/m", "w.bin", "--connections", "4"});
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find("Integrity check failed"), std::string::npos) << r.err;
  EXPECT_GE(cdn_gets().size(), 4u) << "it was a multi-range download";
  EXPECT_FALSE(fs::exists(repo_dir("org/m") / "snapshots" / server.commit_of("org/m") / "w.bin"));
  EXPECT_TRUE(leftovers("org/m").empty());
  EXPECT_TRUE(fs::is_empty(repo_dir("org/m") / "blobs"));
  server.set_faults({});
  r = cli({"download", "org/m", "w.bin", "--connections", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
}

TEST_F(Ranged, SizeDisagreeingWithTheCdnIsAnIntegrityError) {
  server.add_file("org/m", "w.bin", test_bytes(12 * MiB, 17), true);
  FaultServer::Faults f;
  f.lie_size = 10 * MiB;  // the Hub announces less than the CDN holds
  server.set_faults(f);
  auto r = cli({"download", "org/m", "w.bin"});
  EXPECT_EQ(r.exit_code, 8) << r.err;
  EXPECT_NE(r.err.find("announced"), std::string::npos) << r.err;
  EXPECT_TRUE(leftovers("org/m").empty());
}

TEST_F(Ranged, KilledMultiConnectionDownloadResumesEveryRangeAndFetchesOnlyTheMissingBytes) {
  const auto data = test_bytes(24 * MiB, 18);
  server.add_file("org/m", "model.safetensors", data, true);
  FaultServer::Faults f;
  f.trickle_bps = 3'000'000;  // per connection
  server.set_faults(f);
  const pid_t pid = start({"download", "org/m", "model.safetensors", "--connections", "4", "-q"});
  ASSERT_GT(pid, 0);
  // The journal next to the partial says which ranges are on disk.
  auto read_journal = [&]() -> std::optional<transfer::Journal> {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(repo_dir("org/m") / "blobs", ec)) {
      if (e.path().extension() != ".incomplete") continue;
      // The journal is written once the file is sized: before it, the file is just created.
      auto text = read_file(transfer::sidecar_of(e.path()));
      if (text.empty()) continue;
      EXPECT_EQ(fs::file_size(e.path()), data.size()) << "the temp file is sized up front";
      return transfer::parse_journal(text, fs::file_size(e.path(), ec));
    }
    return std::nullopt;
  };
  // kill -9 once a good part of the body is on disk, with several ranges part-way.
  for (int i = 0; i < 1000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto j = read_journal();
    if (j && j->done.total() > 4 * MiB && j->done.gaps(data.size()).size() >= 2) break;
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(fs::exists(repo_dir("org/m") / "snapshots" / server.commit_of("org/m") / "model.safetensors"));

  auto journal = read_journal();
  ASSERT_TRUE(journal.has_value());
  const auto on_disk = journal->done.total();
  const auto gaps = journal->done.gaps(data.size());
  ASSERT_GT(on_disk, 2 * MiB);
  ASSERT_GE(gaps.size(), 2u) << "several ranges were in flight, each with its own progress: "
                             << transfer::journal_to_json(*journal);
  EXPECT_EQ(journal->validator, "\"" + util::sha256_hex(data) + "\"") << "the CDN's ETag, for If-Range";

  server.set_faults({});
  server.clear_log();
  auto r = cli({"download", "org/m", "model.safetensors", "--connections", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  EXPECT_EQ(server.body_bytes_sent(), data.size() - on_disk) << "exactly the missing bytes crossed the wire";
  std::set<std::uint64_t> asked;
  for (const auto& q : cdn_gets()) asked.insert(range_start(q.range));
  for (const auto& [first, end] : gaps) EXPECT_TRUE(asked.count(first)) << "every gap was continued: " << first;
  EXPECT_FALSE(asked.count(0) && journal->done.prefix_end() > 0) << "nothing before the first gap was asked again";
  EXPECT_TRUE(leftovers("org/m").empty());
}

// Where flock is a no-op, a second process may claim a partial (rename) while its
// writer still runs. The writer must notice, leave the file to its new owner and
// start over in a temp file of its own.
TEST_F(Ranged, WriterWhosePartialIsClaimedAwayStopsAndStartsOverInItsOwnFile) {
  const auto data = test_bytes(24 * MiB, 21);
  server.add_file("org/m", "w.bin", data, true);
  FaultServer::Faults f;
  f.trickle_bps = 3'000'000;
  server.set_faults(f);
  const pid_t pid = start({"download", "org/m", "w.bin", "--connections", "4", "-q"});
  ASSERT_GT(pid, 0);
  const auto blobs = repo_dir("org/m") / "blobs";
  fs::path temp;
  for (int i = 0; i < 1000 && temp.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::error_code ec;
    for (auto& e : fs::directory_iterator(blobs, ec))
      if (e.path().extension() == ".incomplete" && server.body_bytes_sent() > 2 * MiB) temp = e.path();
  }
  ASSERT_FALSE(temp.empty());
  // Claim it the way claim_partial does: the file, then its journal.
  const fs::path stolen = blobs / (util::sha256_hex(data) + ".0badc1a1.incomplete");
  fs::rename(temp, stolen);
  fs::rename(transfer::sidecar_of(temp), transfer::sidecar_of(stolen));
  const std::string stolen_journal = read_file(transfer::sidecar_of(stolen));
  server.clear_log();

  int status = 0;
  for (int i = 0; i < 3000 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const auto blob = blobs / util::sha256_hex(data);
  EXPECT_EQ(read_file(blob), data);
  bool from_zero = false;
  for (const auto& q : cdn_gets()) from_zero = from_zero || range_start(q.range) == 0;
  EXPECT_TRUE(from_zero) << "the writer started over";
  // Nothing of the writer's is left behind, and the new owner's files are untouched.
  std::set<std::string> left;
  for (auto& e : fs::directory_iterator(blobs)) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{blob.filename().string(), stolen.filename().string(),
                                         transfer::sidecar_of(stolen).filename().string()}));
  EXPECT_EQ(read_file(transfer::sidecar_of(stolen)), stolen_journal);
}

TEST_F(Ranged, MaxSpeedCapsAllConnectionsTogether) {
  const auto data = test_bytes(10 * MiB, 19);
  server.add_file("org/m", "w.bin", data, true);
  const auto start = std::chrono::steady_clock::now();
  auto r = cli({"download", "org/m", "w.bin", "--connections", "4", "--max-speed", "4M"});
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  EXPECT_GE(cdn_gets().size(), 2u) << "it used several connections";
  // 10.5 MB at 4 MB/s in total is about 2.6 s; four uncapped connections would take
  // a small fraction of that. Only a loose lower bound: a slow machine is slower.
  EXPECT_GE(secs, 1.5) << "the cap holds across connections";
}

TEST_F(Ranged, InvalidMaxSpeedIsAnArgumentError) {
  server.add_file("org/m", "a.txt", "x");
  auto r = cli({"download", "org/m", "a.txt", "--max-speed", "fast"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--max-speed"), std::string::npos) << r.err;
}

TEST(RangedServe, DownloadsThroughHubcacheServeOverSeveralRanges) {
  TempDir dir;
  const auto data = test_bytes(16 * MiB + 3, 20);
  write_file(dir / "src/model.onnx", data);
  auto r = run_cli({"import", (dir / "src").string(), "--repo", "org/model", "--cache-dir", (dir / "served").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ServeProcess serve(dir / "served");
  r = run_cli(
      {"download", "org/model", "model.onnx", "--connections", "4", "-q"},
      {{"HF_ENDPOINT", serve.url()}, {"HF_HUB_CACHE", (dir / "cache").string()}, {"HUBCACHE_RETRY_BASE_MS", "10"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  std::size_t ranged = 0;
  std::istringstream log(serve.log());
  for (std::string line; std::getline(log, line);)
    if (line.rfind("cdn GET ", 0) == 0 && line.find(" 206 ") != std::string::npos) ++ranged;
  EXPECT_GE(ranged, 4u) << serve.log();
}
