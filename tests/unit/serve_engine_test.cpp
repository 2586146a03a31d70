// The serve engine in-process, with test handlers: what the pull-through mirror
// builds on. Asynchronous completion from other threads, the three body kinds
// (a growing file paused until its bytes exist, aborted when it fails), a client
// going away, a dropped responder, the metrics hook, drain.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "serve/engine.hpp"
#include "support/raw_http.hpp"
#include "support/test_support.hpp"

using namespace hubcache;
using namespace hubcache::serve;
using namespace hubcache::test;
using namespace std::chrono_literals;

namespace {

// An engine with one listener and a handler set per test.
struct TestEngine {
  Engine engine;
  int port = 0;
  std::mutex mutex;
  std::vector<RequestRecord> records;
  std::vector<std::string> routes;  // RequestRecord's views do not outlive the hook
  std::condition_variable cv;

  explicit TestEngine(Handler handler, Limits limits = {}) : engine(limits, EngineOptions{2, 2}) {
    port = engine.listen("test", "127.0.0.1", 0, std::move(handler));
    engine.on_request_done([this](const RequestRecord& r) {
      std::lock_guard lock(mutex);
      records.push_back(r);
      routes.emplace_back(r.route);
      records.back().route = {};
      records.back().listener = {};
      records.back().method = {};
      records.back().target = {};
      cv.notify_all();
    });
    engine.start();
  }
  // The loop threads must be gone before the members the hook writes to: a request the
  // client already has (a HEAD's answer) can still be recorded while the test returns,
  // and members die before `engine`, declared first.
  ~TestEngine() { engine.stop(); }
  // Waits until `n` requests have finished; their records.
  std::vector<RequestRecord> wait_records(std::size_t n) {
    std::unique_lock lock(mutex);
    cv.wait_for(lock, 10s, [&] { return records.size() >= n; });
    return records;
  }
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return s;
}

}  // namespace

TEST(ServeEngine, AsyncCompletionFromAnotherThreadKeepsPipelinedResponsesInOrder) {
  std::vector<std::thread> workers;
  std::mutex wm;
  TestEngine t([&](Request& req, Responder res) {
    if (req.target == "/slow") {
      // Answered 100 ms later from a thread of our own: the connection holds no thread meanwhile.
      std::lock_guard lock(wm);
      workers.emplace_back([res] {
        std::this_thread::sleep_for(100ms);
        Response r = Response::text(200, "slow");
        r.route = "slow";
        res.respond(r);
        res.respond(Response::text(500, "a second answer is ignored"));
      });
      return;
    }
    Response r = Response::text(200, "fast " + req.target);
    r.route = "fast";
    res.respond(std::move(r));
  });
  RawConnection c(t.port);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(http_get("/slow") + http_get("/a") + http_get("/b")));
  auto r1 = c.read_response();
  auto r2 = c.read_response();
  auto r3 = c.read_response();
  EXPECT_EQ(r1.body, "slow");
  EXPECT_EQ(r2.body, "fast /a");
  EXPECT_EQ(r3.body, "fast /b");
  // Meanwhile another connection was not held up by the slow one.
  auto records = t.wait_records(3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(t.routes[0], "slow");
  EXPECT_EQ(records[0].status, 200);
  EXPECT_EQ(records[0].body_bytes, 4u);
  EXPECT_GE(records[0].duration, 100ms);
  EXPECT_TRUE(records[0].complete);
  for (auto& w : workers) w.join();
  EXPECT_EQ(t.engine.drain(5s), 0);
}

TEST(ServeEngine, FileBodiesUseSendfileAndKeepTheConnection) {
  TempDir dir;
  const std::string content = pattern(3 << 20);
  write_file(dir / "f", content);
  TestEngine t([&](Request& req, Responder res) {
    auto file = FileHandle::open((dir / "f").string());
    Response r;
    auto range = parse_range(req.header("Range"), content.size());
    std::uint64_t start = 0, end = content.size();
    if (range.kind == ByteRange::satisfiable) {
      start = range.start;
      end = range.end;
      r.status = 206;
    }
    r.body = FileBody{file, start, end - start};
    res.respond(std::move(r));
  });
  RawConnection c(t.port);
  ASSERT_TRUE(c.send(http_get("/f")));
  auto whole = c.read_response();
  ASSERT_TRUE(whole.ok);
  EXPECT_TRUE(whole.body == content);
  EXPECT_EQ(whole.count("connection"), 0u) << "kept alive";
  EXPECT_EQ(whole.count("keep-alive"), 0u);
  ASSERT_TRUE(c.send(http_get("/f", {"Range: bytes=1000-2999"}) + http_get("/f", {}, "HEAD")));
  auto part = c.read_response();
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, content.substr(1000, 2000));
  auto head = c.read_response(10s, true);
  EXPECT_EQ(head.header("content-length"), std::to_string(content.size()));
  EXPECT_TRUE(head.body.empty());
  EXPECT_TRUE(c.pending().empty()) << "HEAD sends no body";
}

TEST(ServeEngine, GrowingFileIsStreamedAsItGrowsAndSharedByResponses) {
  TempDir dir;
  const std::string content = pattern(4 << 20);
  const auto path = (dir / "growing").string();
  int wfd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(wfd, 0);
  auto state = std::make_shared<GrowingFile>(content.size());
  TestEngine t([&](Request& req, Responder res) {
    Response r;
    r.route = "growing";
    auto range = parse_range(req.header("Range"), state->total());
    std::uint64_t start = 0, end = state->total();
    if (range.kind == ByteRange::satisfiable) {
      start = range.start;
      end = range.end;
      r.status = 206;
    }
    r.body = GrowingBody{FileHandle::open(path), state, start, end - start};
    res.respond(std::move(r));
  });
  // Two clients, the whole file and a range in its second half, before any byte exists.
  RawConnection whole(t.port), part(t.port);
  ASSERT_TRUE(whole.send(http_get("/g")));
  ASSERT_TRUE(part.send(http_get("/g", {"Range: bytes=3000000-3999999"})));
  std::future<RawResponse> a = std::async(std::launch::async, [&] { return whole.read_response(20s); });
  std::future<RawResponse> b = std::async(std::launch::async, [&] { return part.read_response(20s); });
  // Nothing can be complete before the producer writes.
  EXPECT_EQ(a.wait_for(200ms), std::future_status::timeout);
  for (std::size_t off = 0; off < content.size(); off += 512 * 1024) {
    const std::size_t n = std::min<std::size_t>(512 * 1024, content.size() - off);
    ASSERT_EQ(::pwrite(wfd, content.data() + off, n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
    state->available(off + n);
    std::this_thread::sleep_for(20ms);
  }
  state->complete();
  ::close(wfd);
  auto ra = a.get();
  auto rb = b.get();
  ASSERT_TRUE(ra.ok);
  EXPECT_EQ(ra.status, 200);
  EXPECT_TRUE(ra.body == content) << ra.body.size();
  ASSERT_TRUE(rb.ok);
  EXPECT_EQ(rb.status, 206);
  EXPECT_TRUE(rb.body == content.substr(3000000, 1000000));
  // Once complete, a new response streams it at once.
  RawConnection late(t.port);
  ASSERT_TRUE(late.send(http_get("/g")));
  EXPECT_TRUE(late.read_response().body == content);
  auto records = t.wait_records(3);
  EXPECT_EQ(records[0].body_bytes + records[1].body_bytes, content.size() + 1000000);
}

TEST(ServeEngine, AFailedGrowingFileResetsTheConnectionInsteadOfEndingCleanly) {
  TempDir dir;
  const auto path = (dir / "growing").string();
  write_file(path, pattern(1 << 20));
  auto state = std::make_shared<GrowingFile>(8 << 20);
  TestEngine t([&](Request&, Responder res) {
    Response r;
    r.body = GrowingBody{FileHandle::open(path), state, 0, state->total()};
    res.respond(std::move(r));
  });
  RawConnection c(t.port);
  ASSERT_TRUE(c.send(http_get("/g")));
  state->available(1 << 20);
  auto reader = std::async(std::launch::async, [&] { return c.read_response(20s); });
  std::this_thread::sleep_for(200ms);
  state->fail();
  auto r = reader.get();
  EXPECT_FALSE(r.ok) << "a body cut short never looks whole";
  EXPECT_EQ(r.header("content-length"), std::to_string(8 << 20));
  EXPECT_EQ(r.body.size(), 1u << 20);
  auto records = t.wait_records(1);
  EXPECT_FALSE(records[0].complete);
}

TEST(ServeEngine, AResponderKnowsWhenItsClientIsGoneAndADroppedOneAnswers500) {
  std::promise<Responder> held;
  std::atomic<bool> gone_called{false};
  TestEngine t([&](Request& req, Responder res) {
    if (req.target == "/drop") return;  // every copy dropped without an answer
    res.on_gone([&] { gone_called = true; });
    held.set_value(res);
  });
  {
    RawConnection c(t.port);
    ASSERT_TRUE(c.send(http_get("/drop")));
    auto r = c.read_response();
    EXPECT_EQ(r.status, 500);
  }
  Responder res;
  {
    RawConnection c(t.port);
    ASSERT_TRUE(c.send(http_get("/hold")));
    res = held.get_future().get();
    EXPECT_TRUE(res.alive());
    // A reset, not a half-close: the client is really gone.
    linger lin{1, 0};
    ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
  }
  for (int i = 0; i < 200 && res.alive(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(res.alive());
  EXPECT_TRUE(gone_called.load());
  res.respond(Response::text(200, "too late"));  // harmless
}

TEST(ServeEngine, DrainLetsAResponseInFlightFinishAndRefusesNewConnections) {
  TempDir dir;
  const auto path = (dir / "growing").string();
  const std::string content = pattern(2 << 20);
  write_file(path, content);
  auto state = std::make_shared<GrowingFile>(content.size());
  state->available(1 << 20);
  TestEngine t([&](Request&, Responder res) {
    Response r;
    r.body = GrowingBody{FileHandle::open(path), state, 0, state->total()};
    res.respond(std::move(r));
  });
  RawConnection idle(t.port);
  RawConnection busy(t.port);
  ASSERT_TRUE(busy.send(http_get("/g")));
  ASSERT_TRUE(busy.received());
  auto drained = std::async(std::launch::async, [&] { return t.engine.drain(10s); });
  EXPECT_TRUE(idle.closed_by_peer(5s)) << "an idle connection is closed at once";
  for (int i = 0; i < 100; ++i) {
    RawConnection probe(t.port);
    if (!probe.connected()) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(RawConnection(t.port).connected()) << "new connections are refused while draining";
  state->complete();
  auto r = busy.read_response(10s);
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.body == content);
  EXPECT_TRUE(busy.closed_by_peer(5s)) << "then the connection ends (its header went out before the drain)";
  EXPECT_EQ(drained.get(), 0) << "nothing was cut";
}

TEST(ServeEngine, RangeParsingIsTheHubs) {
  EXPECT_EQ(parse_range("bytes=0-0", 10).kind, ByteRange::satisfiable);
  EXPECT_EQ(parse_range("bytes=2-", 10).start, 2u);
  EXPECT_EQ(parse_range("bytes=-4", 10).start, 6u);
  EXPECT_EQ(parse_range("bytes=2-100", 10).end, 10u);
  EXPECT_EQ(parse_range("bytes=10-", 10).kind, ByteRange::unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-0", 10).kind, ByteRange::unsatisfiable);
  for (const char* bad : {"bytes=abc", "bytes=1-2,4-5", "items=0-1", "bytes=5-2", "", "bytes=-", "bytes=1-x"})
    EXPECT_EQ(parse_range(bad, 10).kind, ByteRange::none) << bad;
}
