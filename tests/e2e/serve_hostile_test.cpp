// hubcache serve (the real process) against hostile and careless clients: idle
// connections, slowloris, endless and oversized headers, pipelining, half-close,
// and its stop: SIGTERM drains downloads in flight, SIGINT twice stops at once.
// Counts and sizes are small; the load figures are in bench/serve.sh.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "support/fault_server.hpp"
#include "support/raw_http.hpp"
#include "support/serve_process.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache;
using namespace hubcache::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A repo with a small regular file, a 32 MB regular file (streamed by the hub
// listener itself) and an LFS file.
struct Repo {
  TempDir dir;
  std::string small = "{\"hidden_size\": 8}\n";
  std::string big = test_bytes(32 * 1000 * 1000, 11);
  std::string lfs = test_bytes(300000, 12);
  Repo() {
    write_file(dir / "src/config.json", small);
    write_file(dir / "src/big.dat", big);
    write_file(dir / "src/model.onnx", lfs);
    for (int i = 0; i < 5; ++i)
      write_file(dir / "src" / ("f" + std::to_string(i) + ".txt"), "file " + std::to_string(i));
    auto r = run_cli({"import", (dir / "src").string(), "--repo", "org/m", "--cache-dir", (dir / "cache").string(),
                      "--lfs-threshold", "100000000"});
    if (r.exit_code != 0) throw std::runtime_error(r.err);
  }
  fs::path cache() const { return dir / "cache"; }
};

// A fresh client's small GET must be answered while the server is under siege.
void expect_prompt_get(int port, const std::string& what) {
  const auto start = std::chrono::steady_clock::now();
  RawConnection c(port);
  ASSERT_TRUE(c.connected()) << what;
  ASSERT_TRUE(c.send(http_get("/org/m/resolve/main/config.json")));
  auto r = c.read_response(5s);
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(r.ok) << what;
  EXPECT_EQ(r.status, 200) << what;
  EXPECT_EQ(r.body, "{\"hidden_size\": 8}\n") << what;
  EXPECT_LT(ms, 3000) << what << ": " << ms << " ms";
}

}  // namespace

TEST(ServeHostile, IdleConnectionsCostNoThreadAndNoCpu) {
  Repo repo;
  ServeProcess server(repo.cache(), {"--no-access-log", "--threads", "2"});
  ASSERT_GE(raise_nofile_limit(), 1000);
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 400; ++i) {
    auto c = std::make_unique<RawConnection>(server.port());
    ASSERT_TRUE(c->connected()) << i;
    // Half of them kept alive after a request, half never say anything.
    if (i % 2 == 0) {
      ASSERT_TRUE(c->send(http_get("/org/m/resolve/main/config.json")));
      ASSERT_TRUE(c->read_response().ok) << i;
    }
    idle.push_back(std::move(c));
  }
  const int threads = process_threads(server.pid());
  // main + 2 loops + 4 disk threads, whatever the number of connections.
  EXPECT_LE(threads, 8) << threads << " threads for 400 connections";
  const long before = process_cpu_ticks(server.pid());
  std::this_thread::sleep_for(1s);
  const long ticks = process_cpu_ticks(server.pid()) - before;
  EXPECT_LE(ticks, 5) << "idle server used " << ticks << " ticks (1/100 s) in one second";
  expect_prompt_get(server.port(), "next to 400 idle connections");
  for (auto& c : idle) EXPECT_FALSE(c->closed_by_peer(0ms)) << "kept until the idle timeout";
  EXPECT_LT(process_rss_kib(server.pid()), 64 * 1024);
}

TEST(ServeHostile, SlowlorisIsCutAtTheHeaderDeadlineAndOthersAreServed) {
  Repo repo;
  ServeProcess server(repo.cache(), {"--no-access-log", "--header-timeout", "1.5"});
  ASSERT_GE(raise_nofile_limit(), 1000);
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 300; ++i) {
    auto c = std::make_unique<RawConnection>(server.port());
    ASSERT_TRUE(c->connected());
    ASSERT_TRUE(c->send("GET /org/m/resolve/main/config.json HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    slow.push_back(std::move(c));
  }
  const auto start = std::chrono::steady_clock::now();
  // One more header byte on each every 250 ms: never a whole header.
  std::size_t still_open = slow.size();
  while (std::chrono::steady_clock::now() - start < 4s && still_open > 0) {
    still_open = 0;
    for (auto& c : slow)
      if (c->connected()) {
        if (c->send("a"))
          ++still_open;
        else
          c->close();
      }
    if (std::chrono::steady_clock::now() - start < 1s) expect_prompt_get(server.port(), "during slowloris");
    std::this_thread::sleep_for(250ms);
  }
  std::size_t closed = 0;
  for (auto& c : slow) closed += !c->connected() || c->closed_by_peer(2s);
  EXPECT_EQ(closed, slow.size()) << "every trickling connection is closed at the header deadline";
  expect_prompt_get(server.port(), "after slowloris");
}

TEST(ServeHostile, EndlessOrOversizedHeadersGet431Or414InBoundedMemory) {
  Repo repo;
  ServeProcess server(repo.cache(), {"--no-access-log"});
  const long peak_before = process_peak_rss_kib(server.pid());
  // Sends `prefix` then `filler` bytes for as long as the server reads them (up to 64 MiB),
  // and returns its answer.
  auto endless = [&](const std::string& prefix) {
    RawConnection c(server.port());
    EXPECT_TRUE(c.send(prefix));
    const std::string chunk(64 * 1024, 'a');
    for (int i = 0; i < 1024; ++i) {
      timeval tv{0, 200000};
      ::setsockopt(c.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      if (::send(c.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL) <= 0) break;  // stopped reading, or closed
    }
    return c.read_response(5s);
  };
  auto r = endless("GET /org/m/resolve/main/config.json HTTP/1.1\r\nHost: x\r\nX-Endless: ");
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(r.header("connection"), "close");
  r = endless("GET /org/m/resolve/main/");
  EXPECT_EQ(r.status, 414);
  const long peak = process_peak_rss_kib(server.pid());
  EXPECT_LT(peak - peak_before, 16 * 1024) << "peak RSS grew from " << peak_before << " to " << peak << " KiB";

  // A 9 KiB header line, 101 fields, and 80 KiB of fields each within the line limit.
  auto once = [&](const std::vector<std::string>& extra) {
    RawConnection c(server.port());
    c.send(http_get("/org/m/resolve/main/config.json", extra));
    return c.read_response(5s);
  };
  EXPECT_EQ(once({"X-Long: " + std::string(9 * 1024, 'b')}).status, 431);
  std::vector<std::string> many;
  for (int i = 0; i < 101; ++i) many.push_back("X-F" + std::to_string(i) + ": v");
  EXPECT_EQ(once(many).status, 431);
  many.resize(98);
  EXPECT_EQ(once(many).status, 200) << "99 fields (Host included) are fine";
  std::vector<std::string> large;
  for (int i = 0; i < 80; ++i) large.push_back("X-L" + std::to_string(i) + ": " + std::string(1000, 'c'));
  EXPECT_EQ(once(large).status, 431);
  // The same header in two parts, read separately: the parser has consumed the first
  // part's fields before the rest arrives, and the total still counts them.
  auto split = [&](const std::vector<std::string>& extra, std::size_t at) {
    RawConnection c(server.port());
    const std::string req = http_get("/org/m/resolve/main/config.json", extra);
    c.send(req.substr(0, at));
    std::this_thread::sleep_for(100ms);
    c.send(req.substr(at));
    return c.read_response(5s);
  };
  for (std::size_t at : {100, 20000, 40000, 60000}) EXPECT_EQ(split(large, at).status, 431) << "split at " << at;
  EXPECT_EQ(split(many, 1000).status, 200) << "a header within the limits, split";
  expect_prompt_get(server.port(), "after oversized headers");
}

TEST(ServeHostile, PipelinedRequestsAreAnsweredInOrderAndAHalfClosedClientGetsItsAnswer) {
  Repo repo;
  ServeProcess server(repo.cache(), {"--no-access-log"});
  RawConnection c(server.port());
  std::string all;
  for (int i = 0; i < 5; ++i) all += http_get("/org/m/resolve/main/f" + std::to_string(i) + ".txt");
  ASSERT_TRUE(c.send(all));
  for (int i = 0; i < 5; ++i) {
    auto r = c.read_response(5s);
    ASSERT_TRUE(r.ok) << i;
    EXPECT_EQ(r.body, "file " + std::to_string(i));
    EXPECT_FALSE(r.count("connection") && r.count("keep-alive")) << "never both";
  }
  // A request followed by shutdown(SHUT_WR): still answered, then closed.
  for (const std::string target : {"/org/m/resolve/main/config.json", "/org/m/resolve/main/big.dat"}) {
    RawConnection h(server.port());
    ASSERT_TRUE(h.send(http_get(target)));
    h.shutdown_write();
    auto r = h.read_response(20s);
    EXPECT_TRUE(r.ok) << target;
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_EQ(r.body.size(), target.find("big") != std::string::npos ? repo.big.size() : repo.small.size());
    EXPECT_TRUE(h.closed_by_peer(5s));
  }
}

TEST(ServeHostile, AnUnparseableRangeOnAResolveUrlIsIgnoredAsOnTheHub) {
  Repo repo;
  ServeProcess server(repo.cache(), {"--no-access-log"});
  for (const char* range : {"bytes=abc", "bytes=1-2,5-6", "pages=1-2", "bytes=9-3"}) {
    RawConnection c(server.port());
    ASSERT_TRUE(c.send(http_get("/org/m/resolve/main/config.json", {std::string("Range: ") + range})));
    auto r = c.read_response();
    EXPECT_EQ(r.status, 200) << range;
    EXPECT_EQ(r.body, repo.small) << range;
    RawConnection l(server.port());
    ASSERT_TRUE(l.send(http_get("/org/m/resolve/main/model.onnx", {std::string("Range: ") + range})));
    r = l.read_response();
    EXPECT_EQ(r.status, 302) << range;
    EXPECT_EQ(r.header("x-linked-etag"), "\"" + util::sha256_hex(repo.lfs) + "\"");
  }
  // A satisfiable range on an LFS resolve URL is still the redirect, as on the Hub.
  RawConnection c(server.port());
  ASSERT_TRUE(c.send(http_get("/org/m/resolve/main/model.onnx", {"Range: bytes=0-9"})));
  EXPECT_EQ(c.read_response().status, 302);
  // Connection: close on request: answered with "Connection: close" and no Keep-Alive.
  RawConnection k(server.port());
  ASSERT_TRUE(k.send(http_get("/org/m/resolve/main/big.dat", {"Connection: close"})));
  auto r = k.read_response(20s);
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_EQ(r.count("keep-alive"), 0u);
  EXPECT_TRUE(r.body == repo.big);
}

TEST(ServeHostile, SigtermLetsDownloadsInFlightFinishRefusesNewConnectionsAndExitsZero) {
  Repo repo;
  ServeProcess server(repo.cache(), {"--drain-seconds", "30"});
  std::vector<std::unique_ptr<RawConnection>> downloads;
  for (int i = 0; i < 4; ++i) {
    // A small receive buffer: the server cannot finish before we read.
    auto c = std::make_unique<RawConnection>(server.port(), 64 * 1024);
    ASSERT_TRUE(c->send(http_get("/org/m/resolve/main/big.dat")));
    ASSERT_TRUE(c->received());
    downloads.push_back(std::move(c));
  }
  ::kill(server.pid(), SIGTERM);
  bool refused = false;
  for (int i = 0; i < 200 && !refused; ++i) {
    refused = !RawConnection(server.port()).connected();
    if (!refused) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(refused) << "a new connection is refused once draining";
  for (auto& c : downloads) {
    auto r = c->read_response(30s);
    EXPECT_TRUE(r.ok) << "a download in flight finishes";
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.size(), repo.big.size());
    EXPECT_TRUE(r.body == repo.big);
  }
  EXPECT_EQ(server.stop(0), 0) << "exit 0 after the drain; log: " << server.log();
}

TEST(ServeHostile, SigintTwiceStopsAtOnce) {
  Repo repo;
  ServeProcess server(repo.cache(), {"--drain-seconds", "60"});
  RawConnection c(server.port(), 64 * 1024);
  ASSERT_TRUE(c.send(http_get("/org/m/resolve/main/big.dat")));
  ASSERT_TRUE(c.received());
  ::kill(server.pid(), SIGINT);
  // The first one drains (the download would have a minute); wait until it is draining.
  for (int i = 0; i < 200 && RawConnection(server.port()).connected(); ++i) std::this_thread::sleep_for(10ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(SIGINT), 12) << "the second one stops at once (12: cancelled); log: " << server.log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  auto r = c.read_response(10s);
  EXPECT_FALSE(r.ok) << "the download in flight was cut, not ended as if whole";
}
