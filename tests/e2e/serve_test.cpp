// `hubcache import` + `hubcache serve` as real processes: every header, range
// and error of the Hub's API checked on the wire, access control, the access
// log, clean shutdown, constant memory, and hubcache downloading through it.
#include <gtest/gtest.h>
#include <httplib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "layout/naming.hpp"
#include "support/fault_server.hpp"
#include "support/serve_process.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache;
using namespace hubcache::test;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// One imported repo served for the whole suite (importing 20 MB per test is waste).
struct Fixture {
  TempDir dir;
  std::map<std::string, std::string> files;  // repo path -> content
  std::string commit;
  std::string dataset_commit;
  std::unique_ptr<ServeProcess> server;
};
Fixture* fx = nullptr;

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fx = new Fixture;
    fx->files = {{"config.json", "{\"hidden_size\": 8}\n"},
                 {"README.md", "# tiny model\n"},
                 {"tokenizer/vocab.txt", "a\nb\nc\n"},
                 {"nested/deep/er/notes.txt", "deep\n"},
                 {"onnx/model.onnx", test_bytes(20 * 1000 * 1000, 7)},
                 {"with space/é.txt", "unicode and a space\n"}};
    for (auto& [p, c] : fx->files) write_file(fx->dir / "src" / p, c);
    auto r = run_cli({"import", (fx->dir / "src").string(), "--repo", "org/model", "--cache-dir",
                      (fx->dir / "cache").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fx->commit = last_line(r.out);
    ASSERT_TRUE(layout::is_commit_hash(fx->commit)) << r.out;

    write_file(fx->dir / "ds/data/train.csv", "x,y\n1,2\n");
    r = run_cli({"import", (fx->dir / "ds").string(), "--repo", "org/data", "--repo-type", "dataset", "--cache-dir",
                 (fx->dir / "cache").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fx->dataset_commit = last_line(r.out);
    fx->server = std::make_unique<ServeProcess>(fx->dir / "cache");
  }
  static void TearDownTestSuite() {
    delete fx;
    fx = nullptr;
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", fx->server->port());
    c.set_read_timeout(30, 0);
    return c;
  }
  static std::map<std::string, std::optional<std::string>> env_for(const std::string& url, const fs::path& cache) {
    return {{"HF_ENDPOINT", url}, {"HF_HUB_CACHE", cache.string()}, {"HUBCACHE_RETRY_BASE_MS", "10"}};
  }
};

std::pair<std::string, int> split_host_port(const std::string& url) {
  // http://host:port/path -> (host, port)
  auto rest = url.substr(url.find("://") + 3);
  auto slash = rest.find('/');
  auto hostport = rest.substr(0, slash);
  auto colon = hostport.rfind(':');
  return {hostport.substr(0, colon), std::stoi(hostport.substr(colon + 1))};
}
std::string path_of(const std::string& url) {
  auto rest = url.substr(url.find("://") + 3);
  return rest.substr(rest.find('/'));
}

}  // namespace

TEST_F(Serve, ImportWritesTheCacheADownloadWould) {
  const fs::path repo = fx->dir / "cache/models--org--model";
  EXPECT_EQ(read_file(repo / "refs/main"), fx->commit);
  const auto& cfg = fx->files.at("config.json");
  EXPECT_EQ(fs::read_symlink(repo / "snapshots" / fx->commit / "config.json").string(),
            "../../blobs/" + util::git_blob_sha1_hex(cfg));
  const auto& onnx = fx->files.at("onnx/model.onnx");
  EXPECT_EQ(fs::read_symlink(repo / "snapshots" / fx->commit / "onnx/model.onnx").string(),
            "../../../blobs/" + util::sha256_hex(onnx));
  EXPECT_EQ(fs::read_symlink(repo / "snapshots" / fx->commit / "nested/deep/er/notes.txt").string(),
            "../../../../../blobs/" + util::git_blob_sha1_hex(fx->files.at("nested/deep/er/notes.txt")));
  // Deterministic commit: the same folder imports to the same commit; --commit overrides it.
  auto r = run_cli({"import", (fx->dir / "src").string(), "--repo", "org/again", "--cache-dir",
                    (fx->dir / "cache2").string(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), fx->commit);
  const std::string pinned(40, 'a');
  r = run_cli({"import", (fx->dir / "src").string(), "--repo", "org/again", "--cache-dir",
               (fx->dir / "cache2").string(), "--commit", pinned, "--revision", "v1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), pinned);
  EXPECT_EQ(read_file(fx->dir / "cache2/models--org--again/refs/v1"), pinned);
  // And `hubcache verify` agrees with every blob name.
  r = run_cli({"verify", "org/model", "--cache-dir", (fx->dir / "cache").string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(Serve, ImportRefusesBadInputWithAClearError) {
  auto r = run_cli({"import", (fx->dir / "missing").string(), "--repo", "org/x", "--cache-dir",
                    (fx->dir / "cache3").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
  r = run_cli({"import", (fx->dir / "src").string(), "--repo", "../evil", "--cache-dir",
               (fx->dir / "cache3").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = run_cli({"import", (fx->dir / "src").string(), "--repo", "org/x", "--commit", "nothex", "--cache-dir",
               (fx->dir / "cache3").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // A symlink inside the folder that points outside it is refused before any write.
  TempDir evil;
  write_file(evil / "ok.txt", "ok");
  fs::create_symlink("/etc/hostname", evil / "escape.txt");
  r = run_cli({"import", evil.path().string(), "--repo", "org/x", "--cache-dir", (fx->dir / "cache3").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(fs::exists(fx->dir / "cache3/models--org--x/snapshots"));
}

TEST_F(Serve, RegularFileHeadersAreTheHubs) {
  auto c = client();
  const auto& cfg = fx->files.at("config.json");
  auto res = c.Head("/org/model/resolve/main/config.json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("ETag"), "\"" + util::git_blob_sha1_hex(cfg) + "\"");
  EXPECT_EQ(res->get_header_value("X-Repo-Commit"), fx->commit);
  EXPECT_EQ(res->get_header_value("Content-Length"), std::to_string(cfg.size()));
  EXPECT_EQ(res->get_header_value("Accept-Ranges"), "bytes");

  res = c.Get("/org/model/resolve/" + fx->commit + "/config.json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, cfg);

  res = c.Get("/org/model/resolve/main/config.json", {{"Range", "bytes=2-5"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 206);
  EXPECT_EQ(res->get_header_value("Content-Range"), "bytes 2-5/" + std::to_string(cfg.size()));
  EXPECT_EQ(res->body, cfg.substr(2, 4));

  // Percent-encoded names with spaces and UTF-8.
  res = c.Get("/org/model/resolve/main/with%20space/%C3%A9.txt");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, fx->files.at("with space/é.txt"));

  // Datasets live under /datasets/.
  res = c.Get("/datasets/org/data/resolve/main/data/train.csv");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("X-Repo-Commit"), fx->dataset_commit);
  EXPECT_EQ(res->body, "x,y\n1,2\n");
}

TEST_F(Serve, LfsFilesRedirectToTheCdnWhichServesRanges) {
  auto c = client();
  const auto& onnx = fx->files.at("onnx/model.onnx");
  const auto sha = util::sha256_hex(onnx);
  auto res = c.Head("/org/model/resolve/main/onnx/model.onnx");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 302);
  EXPECT_EQ(res->get_header_value("X-Linked-Etag"), "\"" + sha + "\"");
  EXPECT_EQ(res->get_header_value("X-Linked-Size"), std::to_string(onnx.size()));
  EXPECT_EQ(res->get_header_value("X-Repo-Commit"), fx->commit);
  const auto location = res->get_header_value("Location");
  auto [host, port] = split_host_port(location);
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_NE(port, fx->server->port()) << "the CDN is a second listener";

  httplib::Client cdn(host, port);
  res = cdn.Get(path_of(location));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("ETag"), "\"" + sha + "\"");
  EXPECT_TRUE(res->body == onnx) << "body differs";

  res = cdn.Get(path_of(location), {{"Range", "bytes=1000000-1000099"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 206);
  EXPECT_EQ(res->get_header_value("Content-Range"), "bytes 1000000-1000099/" + std::to_string(onnx.size()));
  EXPECT_TRUE(res->body == onnx.substr(1000000, 100));

  res = cdn.Get(path_of(location), {{"Range", "bytes=" + std::to_string(onnx.size() - 10) + "-"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 206);
  EXPECT_TRUE(res->body == onnx.substr(onnx.size() - 10));

  res = cdn.Get(path_of(location), {{"Range", "bytes=" + std::to_string(onnx.size()) + "-"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 416);
  EXPECT_EQ(res->get_header_value("Content-Range"), "bytes */" + std::to_string(onnx.size()));

  res = cdn.Get("/" + std::string(64, '0'));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(Serve, ErrorsAreTheHubs) {
  auto c = client();
  auto res = c.Head("/org/model/resolve/main/nope.bin");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->get_header_value("X-Error-Code"), "EntryNotFound");
  EXPECT_EQ(res->get_header_value("X-Repo-Commit"), fx->commit);

  res = c.Head("/org/model/resolve/no-such-branch/config.json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->get_header_value("X-Error-Code"), "RevisionNotFound");

  res = c.Head("/org/absent/resolve/main/config.json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401) << "anonymous callers cannot tell missing from private";
  EXPECT_EQ(res->get_header_value("X-Error-Code"), "RepoNotFound");
  res = c.Head("/org/absent/resolve/main/config.json", {{"Authorization", "Bearer anything"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->get_header_value("X-Error-Code"), "RepoNotFound");

  res = c.Get("/api/models/org/model/revision/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->get_header_value("X-Error-Code"), "RevisionNotFound");
  EXPECT_TRUE(json::parse(res->body).contains("error"));

  // Path traversal, encoded or not, never reaches outside the cache.
  for (std::string p : {"/org/model/resolve/main/../../../../etc/passwd",
                        "/org/model/resolve/main/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                        "/org/model/resolve/main/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                        "/org/model/resolve/main//etc/passwd", "/..%2F..%2Fetc/model/resolve/main/passwd"}) {
    res = c.Get(p);
    ASSERT_TRUE(res) << p;
    EXPECT_GE(res->status, 400) << p;
    EXPECT_EQ(res->body.find("root:"), std::string::npos) << p;
  }
}

TEST_F(Serve, RepoInfoTreePaginationPathsInfoAndRefs) {
  auto c = client();
  auto res = c.Get("/api/models/org/model/revision/main");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  auto info = json::parse(res->body);
  EXPECT_EQ(info["id"], "org/model");
  EXPECT_EQ(info["sha"], fx->commit);
  std::set<std::string> siblings;
  for (auto& s : info["siblings"]) siblings.insert(s["rfilename"].get<std::string>());
  std::set<std::string> expected;
  for (auto& [p, _] : fx->files) expected.insert(p);
  EXPECT_EQ(siblings, expected);

  res = c.Get("/api/models/org/model");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["sha"], fx->commit);

  // The whole recursive tree, one page at a time through Link headers.
  std::set<std::string> listed;
  std::string next = "/api/models/org/model/tree/main?recursive=true&limit=2";
  int pages = 0;
  while (!next.empty() && pages < 50) {
    res = c.Get(next);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << next;
    ++pages;
    for (auto& e : json::parse(res->body)) {
      if (e["type"] == "file") {
        listed.insert(e["path"].get<std::string>());
        const auto& content = fx->files.at(e["path"].get<std::string>());
        EXPECT_EQ(e["size"], content.size());
        if (e["path"] == "onnx/model.onnx") {
          EXPECT_EQ(e["lfs"]["oid"], util::sha256_hex(content));
          EXPECT_EQ(e["lfs"]["size"], content.size());
        } else {
          EXPECT_EQ(e["oid"], util::git_blob_sha1_hex(content));
        }
      }
    }
    auto link = res->get_header_value("Link");
    next.clear();
    if (!link.empty()) {
      EXPECT_NE(link.find("rel=\"next\""), std::string::npos) << link;
      next = path_of(link.substr(1, link.find('>') - 1));
    }
  }
  EXPECT_EQ(listed, expected);
  EXPECT_GE(pages, 3);

  // Non-recursive listing of a folder.
  res = c.Get("/api/models/org/model/tree/main/nested");
  ASSERT_TRUE(res);
  auto nested = json::parse(res->body);
  ASSERT_EQ(nested.size(), 1u);
  EXPECT_EQ(nested[0]["type"], "directory");
  EXPECT_EQ(nested[0]["path"], "nested/deep");
  res = c.Get("/api/models/org/model/tree/main/absent");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->get_header_value("X-Error-Code"), "EntryNotFound");

  // paths-info: JSON and form bodies.
  res = c.Post("/api/models/org/model/paths-info/main", R"({"paths": ["config.json", "tokenizer", "missing"]})",
               "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  auto pi = json::parse(res->body);
  ASSERT_EQ(pi.size(), 2u);
  EXPECT_EQ(pi[0]["path"], "config.json");
  EXPECT_EQ(pi[0]["type"], "file");
  EXPECT_EQ(pi[1]["type"], "directory");
  res = c.Post("/api/models/org/model/paths-info/main", "paths=onnx%2Fmodel.onnx&expand=true",
               "application/x-www-form-urlencoded");
  ASSERT_TRUE(res);
  pi = json::parse(res->body);
  ASSERT_EQ(pi.size(), 1u);
  EXPECT_EQ(pi[0]["lfs"]["oid"], util::sha256_hex(fx->files.at("onnx/model.onnx")));

  res = c.Get("/api/models/org/model/refs");
  ASSERT_TRUE(res);
  auto refs = json::parse(res->body);
  ASSERT_EQ(refs["branches"].size(), 1u);
  EXPECT_EQ(refs["branches"][0]["name"], "main");
  EXPECT_EQ(refs["branches"][0]["targetCommit"], fx->commit);
}

TEST_F(Serve, HubcacheDownloadsThroughServeByteForByte) {
  TempDir other;
  auto env = env_for(fx->server->url(), other / "cache");
  auto r = run_cli({"download", "org/model", "-q"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path snap = last_line(r.out);
  EXPECT_EQ(snap.filename().string(), fx->commit);
  for (auto& [p, content] : fx->files) EXPECT_TRUE(read_file(snap / p) == content) << p;
  r = run_cli({"verify", "org/model", "--cache-dir", (other / "cache").string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // A dataset through its own URL space.
  r = run_cli({"download", "org/data", "data/train.csv", "--repo-type", "dataset", "-q"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(last_line(r.out)), "x,y\n1,2\n");
}

TEST_F(Serve, ManyConcurrentClientsAllGetTheRightBytes) {
  const auto& onnx = fx->files.at("onnx/model.onnx");
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 24; ++i)
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", fx->server->port());
      c.set_follow_location(true);
      c.set_read_timeout(60, 0);
      auto res = c.Get(i % 2 ? "/org/model/resolve/main/onnx/model.onnx" : "/org/model/resolve/main/config.json");
      if (res && res->status == 200 && res->body == (i % 2 ? onnx : fx->files.at("config.json"))) ++good;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 24);
}

TEST_F(Serve, AccessLogHasOneLinePerRequest) {
  auto c = client();
  auto res = c.Get("/org/model/resolve/main/README.md?marker=log-check");
  ASSERT_TRUE(res);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto log = fx->server->log();
  auto at = log.find("GET /org/model/resolve/main/README.md?marker=log-check 200 " +
                     std::to_string(fx->files.at("README.md").size()));
  EXPECT_NE(at, std::string::npos) << log;
  EXPECT_NE(log.find("ms\n", at), std::string::npos);
}

// Access control: every Hub request needs the token; the CDN URL is signed so a
// leaked sha256 alone does not open it; the token never reaches the log.
TEST(ServeAuth, TokenFileGuardsEveryRequestAndNeverReachesTheLog) {
  TempDir dir;
  write_file(dir / "src/config.json", "{}\n");
  write_file(dir / "src/model.onnx", test_bytes(100000, 3));
  auto r = run_cli({"import", (dir / "src").string(), "--repo", "org/private", "--cache-dir",
                    (dir / "cache").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string token = "hf_servetoken_abcdef0123456789";
  write_file(dir / "token", token + "\n");
  ServeProcess server(dir / "cache", {"--token-file", (dir / "token").string()});
  httplib::Client c("127.0.0.1", server.port());
  auto res = c.Head("/org/private/resolve/main/config.json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = c.Head("/org/private/resolve/main/config.json", {{"Authorization", "Bearer wrong"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = c.Get("/api/models/org/private");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = c.Head("/org/private/resolve/main/model.onnx", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 302);
  const auto location = res->get_header_value("Location");
  EXPECT_EQ(location.find(token), std::string::npos) << "the token is not in the URL";
  auto [host, port] = split_host_port(location);
  httplib::Client cdn(host, port);
  res = cdn.Get(path_of(location));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << "the signed CDN URL works without Authorization, as on the Hub";
  const auto bare = path_of(location).substr(0, path_of(location).find('?'));
  res = cdn.Get(bare);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403) << "a bare sha256 does not open the CDN of a guarded server";

  // hubcache with HF_TOKEN downloads; without it, a clear error.
  TempDir other;
  auto env = std::map<std::string, std::optional<std::string>>{
      {"HF_ENDPOINT", server.url()}, {"HF_HUB_CACHE", (other / "cache").string()}, {"HUBCACHE_RETRY_BASE_MS", "10"}};
  r = run_cli({"download", "org/private", "model.onnx", "-q"}, env);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("HF_TOKEN"), std::string::npos) << r.err;
  env["HF_TOKEN"] = token;
  r = run_cli({"download", "org/private", "-q"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(fs::path(last_line(r.out)) / "model.onnx"), test_bytes(100000, 3));

  EXPECT_EQ(server.stop(SIGTERM), 0) << "clean shutdown on SIGTERM";
  const auto log = server.log();
  EXPECT_NE(log.find("HEAD /org/private/resolve/main/config.json 401"), std::string::npos) << log;
  EXPECT_EQ(log.find(token), std::string::npos) << "the token never reaches the log";
}

TEST(ServeAuth, EmptyOrMissingTokenFileIsRefused) {
  TempDir dir;
  write_file(dir / "empty", "\n");
  auto r = run_cli({"serve", "--port", "0", "--cache-dir", (dir / "cache").string(), "--token-file",
                    (dir / "empty").string()},
                   {}, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("token-file"), std::string::npos) << r.err;
}

TEST(ServeLifecycle, SigintStopsCleanlyAndAPortInUseIsAClearError) {
  TempDir dir;
  fs::create_directories(dir / "cache");
  ServeProcess first(dir / "cache");
  auto r = run_cli({"serve", "--port", std::to_string(first.port()), "--cache-dir", (dir / "cache").string()}, {},
                   std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 11) << "a second server must not share the port; " << r.err;
  EXPECT_NE(r.err.find("Cannot listen on 127.0.0.1:" + std::to_string(first.port())), std::string::npos) << r.err;
  EXPECT_EQ(first.stop(SIGINT), 0);
}

// Serving streams from the file: a 256 MiB file never lands in memory.
TEST(ServeMemory, LargeFileStreamsInConstantMemory) {
  TempDir dir;
  const std::uint64_t size = 256ull << 20;
  {
    std::ofstream f(dir / "src.bin", std::ios::binary);
    std::string block(1 << 20, '\0');
    for (std::uint64_t i = 0; i < size >> 20; ++i) {
      block[0] = static_cast<char>(i);
      f.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
  }
  fs::create_directories(dir / "src");
  fs::rename(dir / "src.bin", dir / "src/weights.safetensors");
  auto r = run_cli({"import", (dir / "src").string(), "--repo", "org/big", "--cache-dir", (dir / "cache").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ServeProcess server(dir / "cache", {"--no-access-log"});
  httplib::Client c("127.0.0.1", server.port());
  c.set_follow_location(true);
  c.set_read_timeout(120, 0);
  std::uint64_t received = 0;
  auto res = c.Get("/org/big/resolve/main/weights.safetensors", [&](const char*, size_t n) {
    received += n;
    return true;
  });
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(received, size);
  // Peak resident memory of the server process (VmHWM), in kB.
  auto status = read_file("/proc/" + std::to_string(server.pid()) + "/status");
  auto at = status.find("VmHWM:");
  ASSERT_NE(at, std::string::npos);
  const long hwm_kb = std::stol(status.substr(at + 6));
  EXPECT_LT(hwm_kb, 50 * 1024) << "peak RSS " << hwm_kb << " kB while serving " << size << " bytes";
}

// Hostile or careless clients do not stop the server from serving others: a
// thousand idle connections, clients that never read, an oversized header.
TEST(ServeRobustness, IdleConnectionsSlowReadersAndHugeHeadersDoNotStarveOthers) {
  TempDir dir;
  write_file(dir / "src/config.json", "{}\n");
  write_file(dir / "src/big.bin", test_bytes(8 * 1000 * 1000, 5));
  auto r = run_cli({"import", (dir / "src").string(), "--repo", "org/m", "--cache-dir", (dir / "cache").string(),
                    "--lfs-threshold", "100000000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ServeProcess server(dir / "cache", {"--no-access-log", "--threads", "8"});

  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  const int idle_count = static_cast<int>(std::min<rlim_t>(1000, nofile.rlim_cur - 100));
  ASSERT_GE(idle_count, 500) << "need file descriptors for the idle connections";

  auto connect_raw = [&]() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  };
  std::vector<int> fds;
  for (int i = 0; i < idle_count; ++i) {
    int fd = connect_raw();
    ASSERT_GE(fd, 0) << "connection " << i;
    fds.push_back(fd);
  }
  // Readers that ask for 8 MB and never read a byte.
  for (int i = 0; i < 4; ++i) {
    int fd = connect_raw();
    ASSERT_GE(fd, 0);
    int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::string req = "GET /org/m/resolve/main/big.bin HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    fds.push_back(fd);
  }
  // A 200 KB header line.
  {
    int fd = connect_raw();
    ASSERT_GE(fd, 0);
    std::string req = "GET /org/m/resolve/main/config.json HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(200000, 'a') +
                      "\r\n\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);  // the server may close before reading it all
    char buf[512];
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
    if (n > 0) {
      buf[n] = 0;
      EXPECT_EQ(std::string(buf).find(" 200 "), std::string::npos) << "an oversized header is refused: " << buf;
    }
    fds.push_back(fd);
  }

  // Meanwhile, ordinary clients are served promptly.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    httplib::Client c("127.0.0.1", server.port());
    c.set_read_timeout(10, 0);
    auto res = c.Get("/org/m/resolve/main/config.json");
    ASSERT_TRUE(res) << "request " << i << " failed while " << idle_count << " connections sat idle";
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "{}\n");
  }
  const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(elapsed, 3.0) << "five requests took " << elapsed << " s next to " << idle_count << " idle connections";
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(server.stop(SIGTERM), 0);
}
