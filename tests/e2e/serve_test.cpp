// `hubcache import` + `hubcache serve` as real processes: every header, range
// and error of the Hub's API checked on the wire, access control, the access
// log, clean shutdown, constant memory, and hubcache downloading through it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
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
  std::string pr_commit;     // org/model at refs/pr/1
  std::string space_commit;  // spaces/org/space
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
                 {"with space/é.txt", "unicode and a space\n"},
                 {"empty.txt", ""},
                 {"data/table.csv", test_bytes(2 * 1000 * 1000, 9)}};  // a large regular (git) file
    for (auto& [p, c] : fx->files) write_file(fx->dir / "src" / p, c);
    auto r = run_cli(
        {"import", (fx->dir / "src").string(), "--repo", "org/model", "--cache-dir", (fx->dir / "cache").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fx->commit = last_line(r.out);
    ASSERT_TRUE(layout::is_commit_hash(fx->commit)) << r.out;

    write_file(fx->dir / "ds/data/train.csv", "x,y\n1,2\n");
    r = run_cli({"import", (fx->dir / "ds").string(), "--repo", "org/data", "--repo-type", "dataset", "--cache-dir",
                 (fx->dir / "cache").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fx->dataset_commit = last_line(r.out);

    write_file(fx->dir / "pr/config.json", "{\"hidden_size\": 16}\n");
    write_file(fx->dir / "pr/pr-only.txt", "from the pull request\n");
    r = run_cli({"import", (fx->dir / "pr").string(), "--repo", "org/model", "--revision", "refs/pr/1", "--cache-dir",
                 (fx->dir / "cache").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fx->pr_commit = last_line(r.out);

    write_file(fx->dir / "space/app.py", "print('hi')\n");
    r = run_cli({"import", (fx->dir / "space").string(), "--repo", "org/space", "--repo-type", "space", "--cache-dir",
                 (fx->dir / "cache").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    fx->space_commit = last_line(r.out);

    // Sixty small files: more than one page of an expanded tree listing (50).
    for (int i = 0; i < 60; ++i) write_file(fx->dir / "many" / ("f" + std::to_string(100 + i) + ".txt"), "x");
    r = run_cli(
        {"import", (fx->dir / "many").string(), "--repo", "org/many", "--cache-dir", (fx->dir / "cache").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
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

// One request on a fresh connection, bytes exactly as they come off the wire: no
// client library in between to decompress, follow redirects or add headers.
struct Raw {
  int status = 0;
  std::map<std::string, std::vector<std::string>> headers;  // lowercase names
  std::string body;
  bool has(const std::string& name) const { return headers.count(name) > 0; }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second.front();
  }
};

Raw raw(int port, const std::string& method, const std::string& target, const std::vector<std::string>& extra = {}) {
  Raw out;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    ADD_FAILURE() << "cannot connect to port " << port;
    return out;
  }
  std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\nConnection: close\r\n";
  for (const auto& h : extra) req += h + "\r\n";
  req += "\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string all;
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  auto head_end = all.find("\r\n\r\n");
  if (head_end == std::string::npos) {
    ADD_FAILURE() << "no complete response to " << method << " " << target << ": " << all.substr(0, 200);
    return out;
  }
  std::istringstream lines(all.substr(0, head_end));
  std::string line;
  std::getline(lines, line);
  out.status = std::stoi(line.substr(line.find(' ') + 1, 3));
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name].push_back(line.substr(line.find_first_not_of(' ', colon + 1)));
  }
  out.body = all.substr(head_end + 4);
  return out;
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
  auto r = run_cli(
      {"import", (fx->dir / "missing").string(), "--repo", "org/x", "--cache-dir", (fx->dir / "cache3").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
  r = run_cli(
      {"import", (fx->dir / "src").string(), "--repo", "../evil", "--cache-dir", (fx->dir / "cache3").string()});
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

// §13 of the Hub API reference, trap by trap, on the raw bytes of the wire.
TEST_F(Serve, ResolveHeadersAndBodiesExactlyAsClientsNeedThem) {
  const int port = fx->server->port();
  // Python GETs with Accept-Encoding: gzip, deflate, br, zstd; the body must still be identity.
  for (const auto* path : {"config.json", "data/table.csv"}) {
    const auto& content = fx->files.at(path);
    auto r =
        raw(port, "GET", std::string("/org/model/resolve/main/") + path, {"Accept-Encoding: gzip, deflate, br, zstd"});
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_FALSE(r.has("content-encoding")) << path << ": " << r.header("content-encoding");
    EXPECT_FALSE(r.has("transfer-encoding")) << path;
    EXPECT_EQ(r.header("content-length"), std::to_string(content.size())) << path;
    EXPECT_TRUE(r.body == content) << path;
    EXPECT_EQ(r.header("etag"), "\"" + util::git_blob_sha1_hex(content) + "\"");
    EXPECT_EQ(r.header("x-repo-commit"), fx->commit);
    EXPECT_EQ(r.header("accept-ranges"), "bytes");
    EXPECT_FALSE(r.has("x-linked-etag")) << "no X-Linked-Etag on a regular 200";
  }
  // HEAD: the real size in Content-Length and no body; Content-Disposition with its trailing ';'.
  auto r = raw(port, "HEAD", "/org/model/resolve/main/with%20space/%C3%A9.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), std::to_string(fx->files.at("with space/é.txt").size()));
  EXPECT_EQ(r.header("content-disposition"), "inline; filename*=UTF-8''%C3%A9.txt; filename=\"é.txt\";");
  EXPECT_TRUE(r.body.empty());
  // An empty file has "Content-Length: 0" on HEAD and GET (Python refuses a size-less answer).
  for (const char* method : {"HEAD", "GET"}) {
    r = raw(port, method, "/org/model/resolve/main/empty.txt");
    EXPECT_EQ(r.status, 200) << method;
    EXPECT_EQ(r.header("content-length"), "0") << method;
    EXPECT_EQ(r.header("etag"), "\"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\"");
    EXPECT_TRUE(r.body.empty());
  }
  // LFS: 302 with X-Linked-*, no ETag, no Xet headers, the Hub's body, never compressed.
  const auto& onnx = fx->files.at("onnx/model.onnx");
  const auto sha = util::sha256_hex(onnx);
  for (const char* method : {"HEAD", "GET"}) {
    r = raw(port, method, "/org/model/resolve/main/onnx/model.onnx", {"Accept-Encoding: gzip, br"});
    EXPECT_EQ(r.status, 302) << method;
    EXPECT_EQ(r.header("x-linked-etag"), "\"" + sha + "\"");
    EXPECT_EQ(r.header("x-linked-size"), std::to_string(onnx.size()));
    EXPECT_EQ(r.header("x-repo-commit"), fx->commit);
    EXPECT_EQ(r.header("accept-ranges"), "bytes");
    EXPECT_FALSE(r.has("etag"));
    EXPECT_FALSE(r.has("x-xet-hash"));
    EXPECT_FALSE(r.has("link")) << "no Link rel=xet-auth";
    EXPECT_FALSE(r.has("content-encoding"));
    ASSERT_TRUE(r.has("location"));
    EXPECT_EQ(r.header("location").rfind("http://127.0.0.1:", 0), 0u) << "absolute, another origin";
    if (std::string(method) == "GET") {
      EXPECT_EQ(r.body, "Found. Redirecting to " + r.header("location"));
    }
  }
  // The CDN: ETag = X-Linked-Etag, octet-stream, identity, HEAD with the real size.
  const auto location = r.header("location");
  auto [host, cdn_port] = split_host_port(location);
  EXPECT_NE(cdn_port, port);
  r = raw(cdn_port, "HEAD", path_of(location));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), std::to_string(onnx.size()));
  EXPECT_EQ(r.header("etag"), "\"" + sha + "\"");
  EXPECT_EQ(r.header("accept-ranges"), "bytes");
  EXPECT_EQ(r.header("content-type"), "application/octet-stream");
  r = raw(cdn_port, "GET", path_of(location), {"Accept-Encoding: gzip, deflate, br"});
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.has("content-encoding"));
  EXPECT_TRUE(r.body == onnx) << "CDN body differs (" << r.body.size() << " bytes)";
  // Errors from resolve are plain text, with the codes and the commit.
  r = raw(port, "GET", "/org/model/resolve/main/nope.bin", {"Accept-Encoding: gzip, br"});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("x-error-code"), "EntryNotFound");
  EXPECT_EQ(r.header("x-error-message"), "Entry not found");
  EXPECT_EQ(r.header("x-repo-commit"), fx->commit);
  EXPECT_FALSE(r.has("content-encoding"));
  EXPECT_EQ(r.body, "Entry not found");
  r = raw(port, "HEAD", "/org/model/resolve/main/tokenizer");
  EXPECT_EQ(r.status, 404) << "a folder is not a file";
  EXPECT_EQ(r.header("x-error-code"), "EntryNotFound");
  EXPECT_EQ(r.header("x-repo-commit"), fx->commit);
}

TEST_F(Serve, RangesAtTheHubAndTheCdn) {
  const int port = fx->server->port();
  const auto& cfg = fx->files.at("config.json");
  const auto& table = fx->files.at("data/table.csv");
  const std::string n = std::to_string(cfg.size());
  struct Want {
    std::string range;
    int status;
    std::string content_range;
    std::string body;
  };
  const std::vector<Want> cases = {
      {"bytes=0-0", 206, "bytes 0-0/" + n, cfg.substr(0, 1)},  // JS and Rust 0.x size probe
      {"bytes=3-", 206, "bytes 3-" + std::to_string(cfg.size() - 1) + "/" + n, cfg.substr(3)},
      {"bytes=-4", 206, "bytes " + std::to_string(cfg.size() - 4) + "-" + std::to_string(cfg.size() - 1) + "/" + n,
       cfg.substr(cfg.size() - 4)},
      // Rust tokio asks one past the end: clamp.
      {"bytes=2-" + n, 206, "bytes 2-" + std::to_string(cfg.size() - 1) + "/" + n, cfg.substr(2)},
      {"bytes=" + n + "-", 416, "bytes */" + n, ""},
      {"bytes=-0", 416, "bytes */" + n, ""},
  };
  for (const auto& w : cases) {
    auto r = raw(port, "GET", "/org/model/resolve/main/config.json", {"Range: " + w.range});
    EXPECT_EQ(r.status, w.status) << w.range;
    EXPECT_EQ(r.header("content-range"), w.content_range) << w.range;
    if (w.status == 206) {
      EXPECT_EQ(r.body, w.body) << w.range;
      EXPECT_EQ(r.header("content-length"), std::to_string(w.body.size())) << w.range;
      EXPECT_EQ(r.header("etag"), "\"" + util::git_blob_sha1_hex(cfg) + "\"") << w.range;
      EXPECT_EQ(r.header("x-repo-commit"), fx->commit) << w.range;
    }
  }
  // A large regular file from an offset (the resume of an interrupted download).
  auto r = raw(port, "GET", "/org/model/resolve/main/data/table.csv", {"Range: bytes=123457-"});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.header("content-range"),
            "bytes 123457-" + std::to_string(table.size() - 1) + "/" + std::to_string(table.size()));
  EXPECT_TRUE(r.body == table.substr(123457)) << r.body.size();

  // The CDN: probe, resume, a middle chunk, past the end.
  const auto& onnx = fx->files.at("onnx/model.onnx");
  const std::string total = std::to_string(onnx.size());
  auto loc = raw(port, "HEAD", "/org/model/resolve/main/onnx/model.onnx").header("location");
  auto [host, cdn_port] = split_host_port(loc);
  r = raw(cdn_port, "GET", path_of(loc), {"Range: bytes=0-0"});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.header("content-range"), "bytes 0-0/" + total);
  EXPECT_EQ(r.body, onnx.substr(0, 1));
  r = raw(cdn_port, "GET", path_of(loc), {"Range: bytes=7000001-"});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.header("content-range"), "bytes 7000001-" + std::to_string(onnx.size() - 1) + "/" + total);
  EXPECT_TRUE(r.body == onnx.substr(7000001)) << r.body.size();
  r = raw(cdn_port, "GET", path_of(loc), {"Range: bytes=10485760-20971519"});  // a 10 MiB chunk, clamped
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.header("content-range"), "bytes 10485760-" + std::to_string(onnx.size() - 1) + "/" + total);
  EXPECT_TRUE(r.body == onnx.substr(10485760)) << r.body.size();
  r = raw(cdn_port, "GET", path_of(loc), {"Range: bytes=" + total + "-"});
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.header("content-range"), "bytes */" + total);
}

TEST_F(Serve, RevisionsBranchCommitPrefixHeadAndEncodedPrRefs) {
  const int port = fx->server->port();
  const std::vector<std::pair<std::string, std::string>> revisions = {
      {"main", fx->commit},
      {"HEAD", fx->commit},  // @huggingface/hub's default
      {fx->commit, fx->commit},
      {fx->commit.substr(0, 7), fx->commit},
      {"refs%2Fpr%2F1", fx->pr_commit},  // decoded after routing on the raw path
  };
  for (const auto& [rev, commit] : revisions) {
    auto r = raw(port, "HEAD", "/org/model/resolve/" + rev + "/config.json");
    EXPECT_EQ(r.status, 200) << rev;
    EXPECT_EQ(r.header("x-repo-commit"), commit) << rev;
    r = raw(port, "GET", "/api/models/org/model/revision/" + rev);
    EXPECT_EQ(r.status, 200) << rev;
    EXPECT_EQ(json::parse(r.body)["sha"], commit) << rev;
  }
  auto r = raw(port, "GET", "/org/model/resolve/refs%2Fpr%2F1/pr-only.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "from the pull request\n");
  r = raw(port, "HEAD", "/org/model/resolve/main/pr-only.txt");
  EXPECT_EQ(r.status, 404) << "never another revision's file";
  // JS listFiles sends the revision unencoded.
  r = raw(port, "GET", "/api/models/org/model/tree/refs/pr/1");
  EXPECT_EQ(r.status, 200);
  std::set<std::string> pr_files;
  for (auto& e : json::parse(r.body)) pr_files.insert(e["path"].get<std::string>());
  EXPECT_EQ(pr_files, (std::set<std::string>{"config.json", "pr-only.txt"}));
  r = raw(port, "GET", "/api/models/org/model/refs?include_prs=1");
  auto refs = json::parse(r.body);
  ASSERT_EQ(refs["pullRequests"].size(), 1u) << r.body;
  EXPECT_EQ(refs["pullRequests"][0]["ref"], "refs/pr/1");
  EXPECT_EQ(refs["pullRequests"][0]["targetCommit"], fx->pr_commit);
  EXPECT_TRUE(refs["converts"].is_array());
  EXPECT_TRUE(refs["tags"].is_array());
  EXPECT_FALSE(json::parse(raw(port, "GET", "/api/models/org/model/refs").body).contains("pullRequests"));
  // Unknown revisions, with the Hub's message.
  for (const auto& target :
       {std::string("/org/model/resolve/nope/config.json"), std::string("/api/models/org/model/revision/nope"),
        std::string("/api/models/org/model/tree/nope")}) {
    r = raw(port, "GET", target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(r.header("x-error-code"), "RevisionNotFound") << target;
    EXPECT_EQ(r.header("x-error-message"), "Invalid rev id: nope") << target;
  }
  EXPECT_EQ(json::parse(raw(port, "GET", "/api/models/org/model/revision/nope").body)["error"], "Invalid rev id: nope");
  // Anonymous callers of a missing repo get the Hub's 401, plus the code for http:// Python.
  r = raw(port, "GET", "/api/models/org/absent");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("x-error-code"), "RepoNotFound");
  EXPECT_NE(r.header("www-authenticate").find("Bearer"), std::string::npos);
}

TEST_F(Serve, TreeListingsRecursiveExpandEncodedPathsAndLinkPagination) {
  const int port = fx->server->port();
  // Booleans as every client spells them.
  std::size_t recursive_count = 0;
  for (const char* flag : {"true", "True", "1"}) {
    auto r = raw(port, "GET", std::string("/api/models/org/model/tree/main?recursive=") + flag + "&expand=False");
    ASSERT_EQ(r.status, 200) << flag;
    auto entries = json::parse(r.body);
    std::size_t files = 0;
    for (auto& e : entries) {
      EXPECT_FALSE(e.contains("xetHash")) << "never a xetHash: Python with hf_xet would call a CAS server";
      EXPECT_FALSE(e.contains("lastCommit")) << "expand=False";
      if (e["type"] == "file") ++files;
      if (e["type"] == "directory") {
        EXPECT_EQ(e["size"], 0);
        EXPECT_TRUE(e["oid"].is_string());
      }
    }
    EXPECT_EQ(files, fx->files.size()) << flag;
    if (recursive_count) {
      EXPECT_EQ(entries.size(), recursive_count);
    }
    recursive_count = entries.size();
  }
  // Non-recursive root: directories first, then files, each sorted.
  auto r = raw(port, "GET", "/api/models/org/model/tree/main?recursive=false");
  std::vector<std::string> kinds, paths;
  for (auto& e : json::parse(r.body)) {
    kinds.push_back(e["type"]);
    paths.push_back(e["path"]);
  }
  EXPECT_TRUE(std::is_sorted(kinds.begin(), kinds.end())) << "directory < file";
  EXPECT_EQ(paths, (std::vector<std::string>{"data", "nested", "onnx", "tokenizer", "with space", "README.md",
                                             "config.json", "empty.txt"}));
  // A sub-folder, raw or percent-encoded as one segment (Python's quote(path, safe="")).
  auto a = raw(port, "GET", "/api/models/org/model/tree/main/nested/deep");
  auto b = raw(port, "GET", "/api/models/org/model/tree/main/nested%2Fdeep");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(json::parse(a.body)[0]["path"], "nested/deep/er");
  r = raw(port, "GET", "/api/models/org/model/tree/main/does-not-exist");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("x-error-code"), "EntryNotFound");
  EXPECT_EQ(r.header("x-error-message"), "does-not-exist does not exist on \"main\"");

  // expand=true: lastCommit on every entry and pages of 50, the next one in an
  // absolute Link header that @huggingface/hub's regex accepts and Python follows verbatim.
  const std::regex js_link(R"re(<(https?:[/][/][^>]+)>;\s+rel="([^"]+)")re");
  std::string next = "/api/models/org/many/tree/main?recursive=true&expand=true";
  std::vector<std::size_t> pages;
  std::set<std::string> seen;
  while (!next.empty() && pages.size() < 10) {
    r = raw(port, "GET", next);
    ASSERT_EQ(r.status, 200) << next;
    auto entries = json::parse(r.body);
    pages.push_back(entries.size());
    for (auto& e : entries) {
      EXPECT_TRUE(e["lastCommit"]["id"].is_string());
      EXPECT_TRUE(e["lastCommit"]["title"].is_string());
      EXPECT_TRUE(e["lastCommit"]["date"].is_string());
      EXPECT_TRUE(seen.insert(e["path"].get<std::string>()).second) << "listed twice: " << e["path"];
    }
    next.clear();
    if (r.has("link")) {
      std::smatch m;
      const std::string link = r.header("link");
      ASSERT_TRUE(std::regex_search(link, m, js_link)) << link;
      EXPECT_EQ(m[2], "next");
      EXPECT_EQ(m[1].str().rfind("http://127.0.0.1:" + std::to_string(port) + "/api/models/org/many/tree/main?", 0), 0u)
          << m[1];
      next = path_of(m[1]);
    }
  }
  EXPECT_EQ(pages, (std::vector<std::size_t>{50, 10}));
  r = raw(port, "GET", "/api/models/org/many/tree/main?recursive=true&expand=false");
  EXPECT_EQ(json::parse(r.body).size(), 60u) << "1000 per page without expand";
  EXPECT_FALSE(r.has("link")) << "no Link on the last page";
}

TEST_F(Serve, RepoInfoSiblingsBlobsExpandAndOneHashEverywhere) {
  const int port = fx->server->port();
  auto info = json::parse(raw(port, "GET", "/api/models/org/model/revision/main?blobs=true").body);
  for (const char* key : {"_id", "id", "modelId", "sha", "lastModified", "createdAt"})
    EXPECT_TRUE(info[key].is_string()) << key;
  EXPECT_EQ(info["private"], false);
  EXPECT_EQ(info["gated"], false);
  EXPECT_EQ(info["disabled"], false);
  EXPECT_EQ(info["downloads"], 0);
  EXPECT_EQ(info["likes"], 0);
  EXPECT_TRUE(info["tags"].is_array());
  std::vector<std::string> names;
  for (auto& s : info["siblings"]) names.push_back(s["rfilename"]);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.size(), fx->files.size()) << "files only, recursive";

  // One hash per file everywhere: siblings, tree, paths-info, resolve, CDN.
  auto tree = json::parse(raw(port, "GET", "/api/models/org/model/tree/main?recursive=true").body);
  std::map<std::string, json> by_path;
  for (auto& e : tree)
    if (e["type"] == "file") by_path[e["path"]] = e;
  for (auto& s : info["siblings"]) {
    const std::string p = s["rfilename"];
    const auto& content = fx->files.at(p);
    const auto& t = by_path.at(p);
    EXPECT_EQ(s["size"], content.size()) << p;
    EXPECT_EQ(s["blobId"], t["oid"]) << p;
    auto head = raw(port, "HEAD", "/org/model/resolve/main/" + layout::quote(p));
    if (p == "onnx/model.onnx") {
      const auto sha = util::sha256_hex(content);
      EXPECT_EQ(s["lfs"]["sha256"], sha);
      EXPECT_EQ(t["lfs"]["oid"], sha);
      EXPECT_EQ(s["lfs"]["size"], content.size());
      EXPECT_EQ(t["lfs"]["pointerSize"], s["lfs"]["pointerSize"]);
      // oid is the git blob sha1 of the LFS pointer file.
      const std::string pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + sha + "\nsize " +
                                  std::to_string(content.size()) + "\n";
      EXPECT_EQ(t["oid"], util::git_blob_sha1_hex(pointer));
      EXPECT_EQ(t["lfs"]["pointerSize"], pointer.size());
      EXPECT_EQ(head.header("x-linked-etag"), "\"" + sha + "\"");
      auto loc = head.header("location");
      auto [host, cdn_port] = split_host_port(loc);
      EXPECT_EQ(raw(cdn_port, "HEAD", path_of(loc)).header("etag"), "\"" + sha + "\"");
    } else {
      EXPECT_FALSE(s.contains("lfs")) << p;
      EXPECT_EQ(t["oid"], util::git_blob_sha1_hex(content)) << p;
      EXPECT_EQ(head.header("etag"), "\"" + t["oid"].get<std::string>() + "\"") << p;
    }
  }
  // expand= / expand[]=: exactly {_id, id} plus the requested keys (@huggingface/hub's modelInfo).
  for (const char* q :
       {"expand=sha&expand=private&expand=downloads", "expand[]=sha&expand[]=private&expand[]=downloads"}) {
    auto e = json::parse(raw(port, "GET", std::string("/api/models/org/model/revision/main?") + q).body);
    std::set<std::string> keys;
    for (auto& [k, v] : e.items()) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"_id", "id", "sha", "private", "downloads"})) << q;
    EXPECT_EQ(e["sha"], fx->commit);
  }
  // paths-info with expand (JSON, as @huggingface/hub sends it): lastCommit, LFS oid, one entry per path.
  httplib::Client c("127.0.0.1", port);
  auto res = c.Post("/api/models/org/model/paths-info/" + fx->commit, R"({"paths":["onnx/model.onnx"],"expand":true})",
                    "application/json");
  ASSERT_TRUE(res);
  auto one = json::parse(res->body);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["lfs"]["oid"], util::sha256_hex(fx->files.at("onnx/model.onnx")));
  EXPECT_EQ(one[0]["lastCommit"]["id"], fx->commit);
  EXPECT_FALSE(one[0].contains("xetHash"));
  // Python's form body: paths repeated.
  res = c.Post("/api/models/org/model/paths-info/main", "paths=config.json&paths=README.md&paths=nope&expand=false",
               "application/x-www-form-urlencoded");
  ASSERT_TRUE(res);
  std::set<std::string> got;
  for (auto& e : json::parse(res->body)) {
    got.insert(e["path"].get<std::string>());
    EXPECT_FALSE(e.contains("lastCommit"));
  }
  EXPECT_EQ(got, (std::set<std::string>{"config.json", "README.md"}));
}

TEST_F(Serve, SpacesAndDatasetsHaveTheirOwnUrlSpaces) {
  const int port = fx->server->port();
  auto r = raw(port, "GET", "/spaces/org/space/resolve/main/app.py");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "print('hi')\n");
  EXPECT_EQ(r.header("x-repo-commit"), fx->space_commit);
  EXPECT_EQ(json::parse(raw(port, "GET", "/api/spaces/org/space").body)["sha"], fx->space_commit);
  EXPECT_EQ(json::parse(raw(port, "GET", "/api/datasets/org/data/tree/main?recursive=true").body).size(), 2u);
  // The same name under another type is another repo.
  EXPECT_EQ(raw(port, "HEAD", "/org/space/resolve/main/app.py").status, 401);
  EXPECT_EQ(raw(port, "HEAD", "/org/space/resolve/main/app.py", {"Authorization: Bearer x"}).status, 404);
  EXPECT_EQ(raw(port, "HEAD", "/datasets/org/model/resolve/main/config.json").status, 401);
  TempDir other;
  auto run = run_cli({"download", "org/space", "app.py", "--repo-type", "space", "-q"},
                     env_for(fx->server->url(), other / "cache"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(fs::path(last_line(run.out)), other / "cache/spaces--org--space/snapshots" / fx->space_commit / "app.py");
}

// Access control: every Hub request needs the token; the CDN URL is signed so a
// leaked sha256 alone does not open it; the token never reaches the log.
TEST(ServeAuth, TokenFileGuardsEveryRequestAndNeverReachesTheLog) {
  TempDir dir;
  write_file(dir / "src/config.json", "{}\n");
  write_file(dir / "src/model.onnx", test_bytes(100000, 3));
  auto r =
      run_cli({"import", (dir / "src").string(), "--repo", "org/private", "--cache-dir", (dir / "cache").string()});
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
  // Nor does the CDN signature, which opens the file as a token would.
  const auto sig = location.substr(location.find("sig=") + 4);
  ASSERT_EQ(sig.size(), 64u) << location;
  EXPECT_EQ(log.find(sig), std::string::npos) << log;
  EXPECT_NE(log.find("cdn GET /" + util::sha256_hex(test_bytes(100000, 3)) + "?name=model.onnx&sig=REDACTED 200"),
            std::string::npos)
      << log;
}

TEST(ServeAuth, EmptyOrMissingTokenFileIsRefused) {
  TempDir dir;
  write_file(dir / "empty", "\n");
  auto r = run_cli(
      {"serve", "--port", "0", "--cache-dir", (dir / "cache").string(), "--token-file", (dir / "empty").string()}, {},
      std::chrono::seconds(20));
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
  // Read system calls of the server (/proc/<pid>/io "syscr": read, pread, sendfile...).
  auto syscr = [&] {
    auto io = read_file("/proc/" + std::to_string(server.pid()) + "/io");
    auto at = io.find("syscr:");
    return at == std::string::npos ? -1L : std::stol(io.substr(at + 6));
  };
  const long reads_before = syscr();
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
  // sendfile(2): the kernel moves the bytes. The socket is non-blocking, so each call
  // moves what the socket buffer takes (about 1-4 MiB on loopback: some 200 calls here);
  // a copy loop through a 64 KiB user-space buffer would need 4,096 reads.
  const long reads = syscr() - reads_before;
  ASSERT_GE(reads_before, 0) << "/proc/<pid>/io is not readable here";
  EXPECT_LE(reads, 1024) << reads << " read calls to send " << size << " bytes";
}

// Hostile or careless clients do not stop the server from serving others: a
// thousand idle connections, clients that never read, an oversized header.
TEST(ServeRobustness, IdleConnectionsSlowReadersAndHugeHeadersDoNotStarveOthers) {
  TempDir dir;
  write_file(dir / "src/config.json", "{}\n");
  write_file(dir / "src/big.dat", test_bytes(8 * 1000 * 1000, 5));  // a regular file: served by the hub port itself
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
    std::string req = "GET /org/m/resolve/main/big.dat HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    fds.push_back(fd);
  }
  // A 200 KB header line.
  {
    int fd = connect_raw();
    ASSERT_GE(fd, 0);
    std::string req =
        "GET /org/m/resolve/main/config.json HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(200000, 'a') + "\r\n\r\n";
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

// Blob names: git blob sha1 for regular files, sha256 for LFS files, chosen by the
// weight-format patterns and by size (over 10 MB by default, --lfs-threshold to change).
TEST(Import, LfsByPatternAndBySizeWithAConfigurableThreshold) {
  TempDir dir;
  const std::map<std::string, std::string> files = {
      {"big.txt", test_bytes(10'000'001, 1)},    // over 10 MB: LFS
      {"exact.txt", test_bytes(10'000'000, 2)},  // 10 MB exactly: regular
      {"weights/w.gguf", "gguf"},
      {"model.pt", "pt"},
      {"sub/model.onnx", "onnx"},
      {"m.safetensors", "st"},
      {"pytorch_model.bin", "bin"},
      {"notes.md", std::string(2000, 'n')},
  };
  for (const auto& [p, c] : files) write_file(dir / "src" / p, c);
  auto blob_of = [&](const std::string& cache, const std::string& commit, const std::string& p) {
    return fs::read_symlink(dir / cache / "models--org--m/snapshots" / commit / p).filename().string();
  };
  auto r = run_cli({"import", (dir / "src").string(), "--repo", "org/m", "--cache-dir", (dir / "a").string(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string commit = last_line(r.out);
  for (const auto& [p, c] : files) {
    const bool lfs = p != "exact.txt" && p != "notes.md";
    EXPECT_EQ(blob_of("a", commit, p), lfs ? util::sha256_hex(c) : util::git_blob_sha1_hex(c)) << p;
  }
  r = run_cli({"import", (dir / "src").string(), "--repo", "org/m", "--cache-dir", (dir / "b").string(),
               "--lfs-threshold", "1000", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  commit = last_line(r.out);
  EXPECT_EQ(blob_of("b", commit, "notes.md"), util::sha256_hex(files.at("notes.md")));
  EXPECT_EQ(blob_of("b", commit, "exact.txt"), util::sha256_hex(files.at("exact.txt")));
  r = run_cli({"import", (dir / "src").string(), "--repo", "org/m", "--cache-dir", (dir / "c").string(),
               "--lfs-threshold", "20000000", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  commit = last_line(r.out);
  EXPECT_EQ(blob_of("c", commit, "big.txt"), util::git_blob_sha1_hex(files.at("big.txt")));
  EXPECT_EQ(blob_of("c", commit, "model.pt"), util::sha256_hex("pt")) << "patterns hold whatever the size";
}

// "Exactly as a download would have": the repo folder hubcache import writes and the
// one a download through hubcache serve writes hold the same blobs, refs and links.
TEST(Import, WritesTheSameRepoFolderAsADownload) {
  TempDir dir;
  write_file(dir / "src/config.json", "{}\n");
  write_file(dir / "src/onnx/model.onnx", test_bytes(300000, 4));
  write_file(dir / "src/a/b/c.txt", "nested\n");
  write_file(dir / "src/empty.txt", "");
  auto r =
      run_cli({"import", (dir / "src").string(), "--repo", "org/m", "--cache-dir", (dir / "imported").string(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ServeProcess server(dir / "imported", {"--no-access-log"});
  r = run_cli({"download", "org/m", "-q"},
              {{"HF_ENDPOINT", server.url()}, {"HF_HUB_CACHE", (dir / "downloaded").string()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto listing = [](const fs::path& repo) {
    std::map<std::string, std::string> out;
    for (const char* part : {"blobs", "refs", "snapshots"})
      for (auto it = fs::recursive_directory_iterator(repo / part); it != fs::recursive_directory_iterator(); ++it) {
        auto rel = it->path().lexically_relative(repo).generic_string();
        out[rel] = it->is_symlink()     ? "-> " + fs::read_symlink(it->path()).string()
                   : it->is_directory() ? "dir"
                                        : read_file(it->path());
      }
    return out;
  };
  EXPECT_EQ(listing(dir / "imported/models--org--m"), listing(dir / "downloaded/models--org--m"));
  EXPECT_TRUE(fs::exists(dir / "imported/CACHEDIR.TAG"));
  EXPECT_EQ(read_file(dir / "imported/CACHEDIR.TAG"), read_file(dir / "downloaded/CACHEDIR.TAG"));
}

// A cache written without symlinks (HF_HUB_DISABLE_SYMLINKS, Windows, some NAS mounts):
// real files in snapshots/, no blob names. The server names them by hashing, or from
// Python's trees/<commit>.json listing when it has one, and clients download them.
TEST(ServeDegraded, RealFilesInSnapshotsAreServedUnderTheirHashes) {
  TempDir dir;
  CacheBuilder b(dir / "cache", "org/nas");
  const auto c = fake_commit(7);
  const std::string cfg = "{\"x\": 1}\n", weights = test_bytes(300000, 8), listed = "small, but LFS upstream\n";
  b.add_file(c, "config.json", cfg, false, CacheBuilder::LinkStyle::real_file);
  b.add_file(c, "model.onnx", weights, true, CacheBuilder::LinkStyle::real_file);
  b.add_file(c, "data/notes.txt", listed, true, CacheBuilder::LinkStyle::real_file);
  b.set_ref("main", c);
  // Python's listing says notes.txt is an LFS file; neither its name nor its size does.
  const std::string pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + util::sha256_hex(listed) +
                              "\nsize " + std::to_string(listed.size()) + "\n";
  json tree = {{"format_version", 1},
               {"files",
                {{"data/notes.txt",
                  {{"size", listed.size()},
                   {"blob_id", util::git_blob_sha1_hex(pointer)},
                   {"lfs_sha256", util::sha256_hex(listed)},
                   {"lfs_size", listed.size()}}}}}};
  write_file(b.repo_dir() / "trees" / (c + ".json"), tree.dump(1));
  ServeProcess server(dir / "cache", {"--no-access-log"});

  auto r = raw(server.port(), "HEAD", "/org/nas/resolve/main/config.json");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("etag"), "\"" + util::git_blob_sha1_hex(cfg) + "\"");
  r = raw(server.port(), "HEAD", "/org/nas/resolve/main/model.onnx");
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.header("x-linked-etag"), "\"" + util::sha256_hex(weights) + "\"");
  auto [host, cdn_port] = split_host_port(r.header("location"));
  EXPECT_TRUE(raw(cdn_port, "GET", path_of(r.header("location"))).body == weights);
  r = raw(server.port(), "HEAD", "/org/nas/resolve/main/data/notes.txt");
  EXPECT_EQ(r.status, 302) << "LFS, as trees/<commit>.json says";
  EXPECT_EQ(r.header("x-linked-etag"), "\"" + util::sha256_hex(listed) + "\"");
  auto t = json::parse(raw(server.port(), "GET", "/api/models/org/nas/tree/main/data").body);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0]["oid"], util::git_blob_sha1_hex(pointer));

  TempDir other;
  auto run = run_cli({"download", "org/nas", "-q"},
                     {{"HF_ENDPOINT", server.url()}, {"HF_HUB_CACHE", (other / "cache").string()}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const fs::path snap = last_line(run.out);
  EXPECT_EQ(read_file(snap / "config.json"), cfg);
  EXPECT_TRUE(read_file(snap / "model.onnx") == weights);
  EXPECT_EQ(read_file(snap / "data/notes.txt"), listed);
  EXPECT_EQ(fs::read_symlink(snap / "data/notes.txt").filename().string(), util::sha256_hex(listed));
  run = run_cli({"verify", "org/nas", "--cache-dir", (other / "cache").string()});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
}
