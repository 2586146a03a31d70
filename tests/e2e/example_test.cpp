// examples/fetch_model.cpp, built by CMake, run against `hubcache serve`: the seed
// API end to end as an application uses it.
#include <gtest/gtest.h>
#include <signal.h>

#include "support/fault_server.hpp"
#include "support/serve_process.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache;
using namespace hubcache::test;
namespace fs = std::filesystem;

TEST(Example, FetchModelDownloadsThenServesFromTheCacheOffline) {
  TempDir dir;
  const std::string onnx = test_bytes(3 * 1000 * 1000, 11);
  write_file(dir / "model/onnx/model.onnx", onnx);
  write_file(dir / "model/config.json", "{}\n");
  auto r = run_cli({"import", (dir / "model").string(), "--repo", "org/tiny-onnx", "--cache-dir",
                    (dir / "served").string(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string commit = last_line(r.out);
  ServeProcess server(dir / "served");

  const std::string example = std::string(HUBCACHE_BUILD_DIR) + "/fetch_model";
  ASSERT_TRUE(fs::exists(example));
  std::map<std::string, std::optional<std::string>> env = {{"HF_ENDPOINT", server.url()},
                                                           {"HF_HUB_CACHE", (dir / "app-cache").string()}};
  r = run({example, "org/tiny-onnx", "onnx/model.onnx"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path expected = dir / "app-cache/models--org--tiny-onnx/snapshots" / commit / "onnx/model.onnx";
  EXPECT_EQ(r.out, expected.string() + "\n" + std::to_string(onnx.size()) + " bytes\n");
  EXPECT_NE(r.err.find("not cached yet"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("100%"), std::string::npos) << "progress reaches 100%: " << r.err;
  EXPECT_EQ(fs::read_symlink(expected).string(), "../../../blobs/" + util::sha256_hex(onnx));

  // Offline, with the server gone: the same answer from the cache.
  ASSERT_EQ(server.stop(SIGTERM), 0);
  env["HF_HUB_OFFLINE"] = "1";
  r = run({example, "org/tiny-onnx", "onnx/model.onnx"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), std::to_string(onnx.size()) + " bytes");
  EXPECT_NE(r.err.find("cached: "), std::string::npos) << r.err;

  // A file the cache does not have, offline: exit 3 with a message naming it.
  r = run({example, "org/tiny-onnx", "onnx/model_fp16.onnx"}, env);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("onnx/model_fp16.onnx"), std::string::npos) << r.err;
}
