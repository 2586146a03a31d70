// What the fuzz targets (fuzz/) found in a parser, replayed end to end: the real CLI against
// the fault-injecting Hub + CDN (tests/support/fault_server). The parser-level replays are in
// tests/unit/fuzz_regressions_test.cpp.
#include <gtest/gtest.h>

#include "layout/naming.hpp"
#include "support/fault_server.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache;
using namespace hubcache::test;
namespace fs = std::filesystem;

namespace {

class FuzzFindings : public ::testing::Test {
 protected:
  FaultServer server;
  TempDir dir;
  RunResult cli(std::vector<std::string> args) {
    return run_cli(args, {{"HF_ENDPOINT", server.url()},
                          {"HF_HUB_CACHE", (dir / "cache").string()},
                          {"HUBCACHE_RETRY_BASE_MS", "10"},
                          {"HF_HUB_ETAG_TIMEOUT", "5"},
                          {"HF_HUB_DOWNLOAD_TIMEOUT", "5"}});
  }
  std::vector<std::string> blob_dir_entries(const std::string& repo) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto& e :
         fs::directory_iterator(dir / "cache" / layout::repo_folder_name(repo, RepoType::model) / "blobs", ec))
      out.push_back(e.path().filename().string());
    return out;
  }
};

}  // namespace

// fuzz_cache_files: the resume journal threw nlohmann's type_error for bytes that are not
// UTF-8. A CDN's ETag is such a string (the engine keeps it as the If-Range validator and
// journals it while bytes arrive): the download failed with an internal error and left its
// full-size temp file and journal behind.
TEST_F(FuzzFindings, CdnEtagThatIsNotUtf8DoesNotBreakTheDownload) {
  const auto data = test_bytes(3'000'000, 21);
  server.add_file("org/m", "model.safetensors", data, true);
  FaultServer::Faults f;
  f.cdn_etag = "\"\xff\xfe-raw-bytes\"";  // a strong ETag (RFC 9110 etagc allows obs-text)
  f.trickle_bps = 4'000'000;              // long enough for the journal to be rewritten on the way
  server.set_faults(f);
  auto r = cli({"download", "org/m", "model.safetensors"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), data);
  EXPECT_EQ(blob_dir_entries("org/m"), std::vector<std::string>{util::sha256_hex(data)}) << "no temp file or journal";
}
