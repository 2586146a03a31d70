// The mirror's pieces that need no upstream: the rate gate, metrics, repo policy,
// routes, Xet stripping, attempts (growing files), revision and access caches,
// listings, and --max-size.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <thread>

#include "hubcache/admin.hpp"
#include "layout/naming.hpp"
#include "mirror/access.hpp"
#include "mirror/fill.hpp"
#include "mirror/listings.hpp"
#include "mirror/metrics.hpp"
#include "mirror/policy.hpp"
#include "mirror/rate_gate.hpp"
#include "mirror/revisions.hpp"
#include "mirror/space.hpp"
#include "mirror/target.hpp"
#include "mirror/workers.hpp"
#include "mirror/xet.hpp"
#include "store/repo_cache.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache;
using namespace hubcache::mirror;
using hubcache::test::CacheBuilder;
using hubcache::test::TempDir;
using namespace std::chrono_literals;

namespace {
http::Headers headers(std::initializer_list<std::pair<std::string, std::string>> items) {
  http::Headers h;
  for (const auto& [k, v] : items) h.add(k, v);
  return h;
}
}  // namespace

TEST(MirrorRateGate, ClosesOnceForEveryoneAndCountsDown) {
  RateGate gate;
  const auto t0 = RateGate::Clock::now();
  EXPECT_FALSE(gate.closed(t0));
  EXPECT_FALSE(gate.observe(200, headers({{"RateLimit", "\"api\";r=0;t=50"}}), t0)) << "only 429/503 close it";
  EXPECT_FALSE(gate.observe(503, headers({}), t0)) << "a bare 503 is an outage, not a request to wait";
  EXPECT_TRUE(gate.observe(429,
                           headers({{"Retry-After", "7"},
                                    {"RateLimit", "\"api\";r=0;t=7"},
                                    {"RateLimit-Policy", "\"fixed window\";\"api\";q=500;w=300"}}),
                           t0));
  auto closed = gate.closed(t0 + 2s);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->status, 429);
  EXPECT_EQ(closed->retry_after, 5s);
  bool ratelimit = false, policy = false;
  for (const auto& [k, v] : closed->headers) {
    if (k == "Retry-After") {
      EXPECT_EQ(v, "5");
    }
    ratelimit |= k == "RateLimit";
    policy |= k == "RateLimit-Policy";
  }
  EXPECT_TRUE(ratelimit && policy) << "clients see the upstream's rate-limit headers";
  EXPECT_FALSE(gate.closed(t0 + 8s));
  // RateLimit's t= when there is no Retry-After; a 503 that says when counts too.
  EXPECT_TRUE(gate.observe(503, headers({{"RateLimit", "\"resolvers\";r=0;t=20"}}), t0));
  EXPECT_EQ(gate.closed(t0)->retry_after, 20s);
  EXPECT_EQ(gate.closed(t0)->status, 503);
  // An absurd wait is capped.
  RateGate capped;
  EXPECT_TRUE(capped.observe(429, headers({{"Retry-After", "999999"}}), t0));
  EXPECT_EQ(capped.closed(t0)->retry_after, RateGate::kMaxClosed);
  // A bare 429 waits one second.
  RateGate bare;
  EXPECT_TRUE(bare.observe(429, headers({}), t0));
  EXPECT_EQ(bare.closed(t0)->retry_after, 1s);
}

TEST(MirrorMetrics, RendersThePrometheusTextFormat) {
  Metrics m;
  m.declare("hubcache_requests_total", "Requests.\nTwo lines \\ here", Metrics::Type::counter);
  m.declare("hubcache_latency_seconds", "Latency.", Metrics::Type::histogram, {0.1, 1});
  double in_flight = 3;
  m.declare_gauge_fn("hubcache_in_flight", "Now.", [&] { return in_flight; });
  m.add("hubcache_requests_total", {{"route", "resolve"}, {"status", "200"}});
  m.add("hubcache_requests_total", {{"route", "resolve"}, {"status", "200"}}, 2);
  m.add("hubcache_requests_total", {{"route", "odd\"name\\\n"}, {"status", "404"}});
  m.observe("hubcache_latency_seconds", {{"route", "cdn"}}, 0.05);
  m.observe("hubcache_latency_seconds", {{"route", "cdn"}}, 0.5);
  m.observe("hubcache_latency_seconds", {{"route", "cdn"}}, 5);
  const std::string text = m.render();
  EXPECT_NE(text.find("# HELP hubcache_requests_total Requests.\\nTwo lines \\\\ here\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE hubcache_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("hubcache_requests_total{route=\"resolve\",status=\"200\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hubcache_requests_total{route=\"odd\\\"name\\\\\\n\",status=\"404\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE hubcache_latency_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("hubcache_latency_seconds_bucket{route=\"cdn\",le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hubcache_latency_seconds_bucket{route=\"cdn\",le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hubcache_latency_seconds_bucket{route=\"cdn\",le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hubcache_latency_seconds_count{route=\"cdn\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hubcache_latency_seconds_sum{route=\"cdn\"} 5.55"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE hubcache_in_flight gauge\nhubcache_in_flight 3\n"), std::string::npos) << text;
  in_flight = 0;
  EXPECT_NE(m.render().find("hubcache_in_flight 0\n"), std::string::npos);
  EXPECT_EQ(m.value("hubcache_requests_total", {{"route", "resolve"}, {"status", "200"}}), 3);
  // Families come in declaration order.
  EXPECT_LT(text.find("hubcache_requests_total"), text.find("hubcache_latency_seconds"));
  EXPECT_LT(text.find("hubcache_latency_seconds"), text.find("hubcache_in_flight"));
}

TEST(MirrorPolicy, DenyWinsAllowRestrictsTypesOptional) {
  RepoPolicy open({}, {});
  EXPECT_FALSE(open.refusal(RepoType::model, "org/m"));
  RepoPolicy p({"org/*", "datasets/shared/*"}, {"org/secret-*", "*/bad"});
  EXPECT_FALSE(p.refusal(RepoType::model, "org/m"));
  EXPECT_FALSE(p.refusal(RepoType::dataset, "shared/d"));
  auto why = p.refusal(RepoType::model, "shared/d");
  ASSERT_TRUE(why) << "the pattern names datasets";
  EXPECT_NE(why->find("no --allow"), std::string::npos) << *why;
  why = p.refusal(RepoType::model, "org/secret-1");
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("--deny 'org/secret-*'"), std::string::npos) << *why;
  EXPECT_TRUE(p.refusal(RepoType::model, "org/bad"));
  EXPECT_TRUE(p.refusal(RepoType::model, "other/m"));
  RepoPolicy star({"*"}, {"models/*"});
  EXPECT_TRUE(star.refusal(RepoType::model, "a/b"));
  EXPECT_FALSE(star.refusal(RepoType::space, "a/b"));
}

TEST(MirrorTarget, ParsesHubRoutesOnTheRawPath) {
  auto t = parse_target("/org/m/resolve/refs%2Fpr%2F1/dir/a%20b.txt?download=true", false);
  EXPECT_EQ(t.kind, Target::Kind::resolve);
  EXPECT_EQ(t.repo_id, "org/m");
  EXPECT_EQ(t.revision, "refs/pr/1");
  EXPECT_EQ(t.path, "dir/a b.txt");
  EXPECT_EQ(t.param("download"), "true");
  t = parse_target("/datasets/org/d/resolve/main/x.csv", false);
  EXPECT_EQ(t.type, RepoType::dataset);
  EXPECT_EQ(t.kind, Target::Kind::resolve);
  t = parse_target("/gpt2/resolve/main/config.json", false);
  EXPECT_EQ(t.repo_id, "gpt2");
  t = parse_target("/api/models/org/m", false);
  EXPECT_EQ(t.kind, Target::Kind::info);
  EXPECT_EQ(t.revision, "");
  t = parse_target("/api/spaces/org/s/revision/v1.0?expand=sha&expand=private", false);
  EXPECT_EQ(t.kind, Target::Kind::info);
  EXPECT_EQ(t.type, RepoType::space);
  EXPECT_EQ(t.revision, "v1.0");
  EXPECT_EQ(t.params["expand"].size(), 2u);
  t = parse_target("/api/models/org/m/tree/refs/pr/3/sub/dir?recursive=True", false);
  EXPECT_EQ(t.kind, Target::Kind::tree);
  EXPECT_EQ(t.revision, "refs/pr/3");
  EXPECT_EQ(t.path, "sub/dir");
  EXPECT_TRUE(t.flag("recursive"));
  EXPECT_FALSE(t.flag("expand"));
  t = parse_target("/api/models/org/m/tree/main/onnx%2Fsub", false);
  EXPECT_EQ(t.path, "onnx/sub");
  EXPECT_EQ(parse_target("/api/models/org/m/paths-info/main", false).kind, Target::Kind::paths_info);
  EXPECT_EQ(parse_target("/api/models/org/m/refs", false).kind, Target::Kind::refs);
  EXPECT_EQ(parse_target("/api/models/org/m/xet-read-token/main", false).kind, Target::Kind::xet_token);
  EXPECT_EQ(parse_target("/api/models/org/m/commits/main", false).kind, Target::Kind::other_api);
  EXPECT_EQ(parse_target("/metrics", false).kind, Target::Kind::none);
  EXPECT_EQ(parse_target("/org/m/resolve/main", false).kind, Target::Kind::none);
  const std::string sha(64, 'a');
  t = parse_target("/" + sha + "?repo=datasets/org/d&rev=" + std::string(40, 'c') + "&file=a%2Fb.bin&sig=x", true);
  EXPECT_EQ(t.kind, Target::Kind::blob);
  EXPECT_EQ(t.sha256, sha);
  EXPECT_EQ(t.type, RepoType::dataset);
  EXPECT_EQ(t.repo_id, "org/d");
  EXPECT_EQ(t.path, "a/b.bin");
  EXPECT_EQ(t.param("sig"), "x");
  EXPECT_EQ(parse_target("/" + sha, false).kind, Target::Kind::none) << "blobs only on the CDN listener";
  EXPECT_EQ(parse_target("/nothex", true).kind, Target::Kind::none);
}

TEST(MirrorXet, SignalsAreStripped) {
  const std::string tree =
      R"([{"type":"file","oid":"o","size":3,"lfs":{"oid":"s","size":3,"pointerSize":130},"xetHash":"abc","path":"a"},)"
      R"({"type":"directory","oid":"d","size":0,"path":"x"}])";
  const std::string out = strip_xet_json(tree);
  EXPECT_EQ(out.find("xetHash"), std::string::npos) << out;
  EXPECT_NE(out.find("\"lfs\""), std::string::npos) << out;
  EXPECT_LT(out.find("\"type\""), out.find("\"oid\"")) << "the Hub's key order is kept";
  EXPECT_NE(strip_xet_json(R"({"id":"a","xetEnabled":true})").find("\"xetEnabled\":false"), std::string::npos);
  EXPECT_EQ(strip_xet_json("not json"), "not json");
  EXPECT_TRUE(is_xet_header("X-Xet-Hash", "abc"));
  EXPECT_TRUE(is_xet_header("x-xet-refresh-route", "/x"));
  EXPECT_TRUE(is_xet_header("Link", "</api/x>; rel=\"xet-auth\""));
  EXPECT_FALSE(is_xet_header("Link", "<http://h/x?cursor=1>; rel=\"next\""));
  EXPECT_FALSE(is_xet_header("ETag", "\"x\""));
}

namespace {
// An attempt over a real temp file of `size` bytes.
std::shared_ptr<Attempt> make_attempt(const TempDir& dir, std::uint64_t size) {
  const auto path = dir / "partial";
  test::write_file(path, std::string(size, 'x'));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  return std::make_shared<Attempt>(fd, size);
}
}  // namespace

TEST(MirrorAttempt, ReadersSeeTheirRunAndNeverTheLastByteBeforeTheVerdict) {
  TempDir dir;
  auto a = make_attempt(dir, 100);
  std::vector<Attempt::View> whole, middle;
  a->listen(0, [&](const Attempt::View& v) {
    whole.push_back(v);
    return true;
  });
  a->listen(50, [&](const Attempt::View& v) {
    middle.push_back(v);
    return true;
  });
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole.back().available, 0u);
  EXPECT_EQ(middle.back().available, 50u) << "nothing from 50 yet";
  EXPECT_EQ(a->readers(), 2u);
  EXPECT_EQ(a->wanted(), (std::vector<std::uint64_t>{0, 50}));

  transfer::IntervalSet done;
  done.add(50, 80);
  a->update(done);
  EXPECT_EQ(whole.back().available, 0u) << "byte 0 is still missing";
  EXPECT_EQ(middle.back().available, 80u) << "a range reader gets its bytes before the prefix reaches them";
  EXPECT_EQ(a->wanted(), (std::vector<std::uint64_t>{0, 80}));

  done.add(0, 100);
  a->update(done);
  EXPECT_EQ(whole.back().available, 99u) << "the last byte waits for the hash check";
  EXPECT_EQ(whole.back().state, Attempt::State::growing);
  EXPECT_EQ(middle.back().available, 99u);
  a->complete();
  EXPECT_EQ(whole.back().available, 100u);
  EXPECT_EQ(whole.back().state, Attempt::State::complete);
  EXPECT_EQ(a->readers(), 0u) << "final states end the listening";
  const auto calls = whole.size();
  a->update(done);
  EXPECT_EQ(whole.size(), calls);

  // A reader that listens after the end gets the final state at once.
  Attempt::View late;
  a->listen(10, [&](const Attempt::View& v) {
    late = v;
    return true;
  });
  EXPECT_EQ(late.state, Attempt::State::complete);
  EXPECT_EQ(late.available, 100u);
}

TEST(MirrorAttempt, FailureReachesEveryReaderAndGoneReadersStopListening) {
  TempDir dir;
  auto a = make_attempt(dir, 10);
  int calls = 0;
  a->listen(0, [&](const Attempt::View&) {
    ++calls;
    return false;  // the client went away
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(a->readers(), 0u);
  Attempt::View seen;
  a->listen(0, [&](const Attempt::View& v) {
    seen = v;
    return true;
  });
  transfer::IntervalSet done;
  done.add(0, 10);
  a->update(done);
  EXPECT_EQ(seen.available, 9u);
  a->fail("hash mismatch");
  EXPECT_EQ(seen.state, Attempt::State::failed);
  EXPECT_EQ(a->error(), "hash mismatch");
  EXPECT_EQ(calls, 1);
  a->complete();  // too late: failed stays failed
  EXPECT_EQ(a->state(), Attempt::State::failed);
}

TEST(MirrorAttempt, ConcurrentProducerAndReadersSeeMonotonicProgress) {
  TempDir dir;
  constexpr std::uint64_t kSize = 1 << 20;
  auto a = make_attempt(dir, kSize);
  std::atomic<bool> bad{false};
  std::vector<std::thread> readers;
  std::atomic<int> finished{0};
  for (int i = 0; i < 8; ++i)
    readers.emplace_back([&, i] {
      auto last = std::make_shared<std::uint64_t>(0);
      a->listen(static_cast<std::uint64_t>(i) * 1000, [&, last](const Attempt::View& v) {
        if (v.available < *last) bad = true;
        *last = v.available;
        if (v.state == Attempt::State::complete) ++finished;
        return true;
      });
    });
  transfer::IntervalSet done;
  for (std::uint64_t at = 0; at < kSize; at += 4096) {
    done.add(at, at + 4096);
    a->update(done);
  }
  for (auto& t : readers) t.join();
  a->complete();
  EXPECT_FALSE(bad);
  EXPECT_EQ(finished, 8);
}

TEST(MirrorRevisions, BranchesExpireCommitsDoNotAndRefsAreWritten) {
  TempDir dir;
  store::RepoCache cache(dir.path(), "org/m", RepoType::model);
  Revisions rev(60s);
  const std::string c1 = test::fake_commit(1), c2 = test::fake_commit(2);
  EXPECT_FALSE(rev.lookup(cache, "main"));
  auto k = rev.lookup(cache, c1);
  ASSERT_TRUE(k);
  EXPECT_TRUE(k->fresh);
  EXPECT_EQ(k->commit, c1);
  rev.learned(cache, "main", c1);
  EXPECT_EQ(test::read_file(cache.ref_path("main")), c1) << "the cache records the branch, as a download would";
  EXPECT_TRUE(fs::is_directory(cache.snapshot_dir(c1)));
  k = rev.lookup(cache, "main");
  ASSERT_TRUE(k);
  EXPECT_TRUE(k->fresh);
  rev.learned(cache, "refs/pr/1", c2);
  EXPECT_EQ(test::read_file(cache.ref_path("refs/pr/1")), c2);
  rev.learned(cache, "HEAD", c2);
  EXPECT_FALSE(fs::exists(cache.ref_path("HEAD"))) << "HEAD is kept in memory only";
  EXPECT_EQ(rev.lookup(cache, "HEAD")->commit, c2);

  // A new mirror (a restart) finds the branch on disk; its age is the ref's mtime.
  Revisions later(60s);
  k = later.lookup(cache, "main");
  ASSERT_TRUE(k);
  EXPECT_TRUE(k->fresh);
  const timespec old[2] = {{std::time(nullptr) - 120, 0}, {std::time(nullptr) - 120, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, cache.ref_path("main").c_str(), old, 0), 0);
  k = later.lookup(cache, "main");
  ASSERT_TRUE(k);
  EXPECT_FALSE(k->fresh) << "confirmed two minutes ago, revalidate is one";
  EXPECT_EQ(k->commit, c1) << "still the last known commit";

  // Facts: from memory, or from a snapshot's symlink.
  CacheBuilder b(dir.path(), "org/m");
  const std::string etag = b.add_file(c1, "w.bin", "weights", true);
  auto f = rev.facts(cache, c1, "w.bin");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->etag, etag);
  EXPECT_EQ(f->size, 7u);
  EXPECT_TRUE(f->lfs());
  EXPECT_FALSE(rev.facts(cache, c1, "other.bin"));
  rev.remember(cache, c1, "other.bin", FileFacts{std::string(40, 'e'), 5});
  EXPECT_EQ(rev.facts(cache, c1, "other.bin")->size, 5u);
  EXPECT_FALSE(rev.facts(cache, c1, "other.bin")->lfs());

  // Missing files: the .no_exist marker, for the same interval.
  EXPECT_FALSE(rev.known_missing(cache, c1, "adapter.json"));
  rev.missing(cache, c1, "adapter.json");
  EXPECT_TRUE(fs::is_regular_file(cache.no_exist_path(c1, "adapter.json")));
  EXPECT_TRUE(rev.known_missing(cache, c1, "adapter.json"));
  ASSERT_EQ(::utimensat(AT_FDCWD, cache.no_exist_path(c1, "adapter.json").c_str(), old, 0), 0);
  EXPECT_FALSE(rev.known_missing(cache, c1, "adapter.json")) << "asked again after the interval";
  rev.missing(cache, c1, "adapter.json");
  EXPECT_TRUE(rev.known_missing(cache, c1, "adapter.json")) << "confirmed again: its mtime moves";
}

TEST(MirrorAccess, DecisionsAreKeptByTokenHashVisibilitySurvivesARestart) {
  TempDir dir;
  const std::string token = "hf_secret_token_value";
  {
    AccessCache a(dir.path(), 60s, 60s);
    EXPECT_FALSE(a.decision(token, RepoType::model, "org/p"));
    Decision d;
    d.allowed = true;
    a.remember(token, RepoType::model, "org/p", d);
    ASSERT_TRUE(a.decision(token, RepoType::model, "org/p"));
    EXPECT_TRUE(a.decision(token, RepoType::model, "org/p")->allowed);
    EXPECT_FALSE(a.decision(token + "x", RepoType::model, "org/p")) << "per token";
    EXPECT_FALSE(a.decision(token, RepoType::dataset, "org/p")) << "per repo";
    EXPECT_EQ(AccessCache::token_key(token), util::sha256_hex(token));
    a.set_visibility(RepoType::model, "org/p", Visibility::restricted);
    a.set_visibility(RepoType::model, "org/open", Visibility::open);
    EXPECT_EQ(a.visibility(RepoType::model, "org/p"), Visibility::restricted);
  }
  AccessCache restarted(dir.path(), 60s, 60s);
  EXPECT_FALSE(restarted.visibility(RepoType::model, "org/open")) << "not fresh after a restart";
  EXPECT_EQ(restarted.last_visibility(RepoType::model, "org/open"), Visibility::open);
  EXPECT_EQ(restarted.last_visibility(RepoType::model, "org/p"), Visibility::restricted);
  EXPECT_FALSE(restarted.last_visibility(RepoType::model, "org/never"));
  EXPECT_FALSE(restarted.decision(token, RepoType::model, "org/p")) << "decisions live in memory only";
  // The token is nowhere on disk.
  for (auto& e : fs::recursive_directory_iterator(dir.path()))
    if (e.is_regular_file()) {
      EXPECT_EQ(test::read_file(e.path()).find(token), std::string::npos) << e.path();
    }
  // A zero TTL keeps nothing.
  AccessCache none(dir.path(), 0s, 0s);
  Decision d;
  d.allowed = true;
  none.remember(token, RepoType::model, "org/p", d);
  EXPECT_FALSE(none.decision(token, RepoType::model, "org/p"));
}

TEST(MirrorListings, LeastRecentlyUsedGoFirst) {
  ListingCache c(100);
  c.put("a", std::string(40, 'a'));  // 41 bytes with its key
  c.put("b", std::string(40, 'b'));
  ASSERT_TRUE(c.get("a"));           // a is now the most recent
  c.put("c", std::string(40, 'c'));  // 123 > 100: one goes
  EXPECT_FALSE(c.get("b")) << "b was the least recently used";
  EXPECT_TRUE(c.get("a"));
  EXPECT_TRUE(c.get("c"));
  c.put("huge", std::string(500, 'h'));
  EXPECT_FALSE(c.get("huge")) << "larger than the whole cache";
  EXPECT_LE(c.bytes(), 100u);
  c.put("a", "x");
  EXPECT_EQ(*c.get("a"), "x");
}

TEST(MirrorSingleFlight, OneRunForConcurrentCallers) {
  WorkerPool pool(4);
  SingleFlight<int> flights(pool);
  std::atomic<int> runs{0}, answers{0};
  std::atomic<bool> release{false};
  for (int i = 0; i < 20; ++i)
    flights.run(
        "k",
        [&] {
          ++runs;
          while (!release) std::this_thread::sleep_for(1ms);
          return 42;
        },
        [&](const int& v) {
          if (v == 42) ++answers;
        });
  release = true;
  while (answers < 20) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(runs, 1);
  flights.run(
      "k", [&] { return ++runs, 7; }, [&](const int&) { ++answers; });
  pool.stop();
  EXPECT_EQ(runs, 2) << "a later call runs again";
}

TEST(MirrorSpace, GcEvictsLeastRecentlyUsedButNeverWhatIsInUse) {
  TempDir dir;
  const auto root = dir.path();
  CacheBuilder a(root, "org/a"), b(root, "org/b"), c(root, "org/c");
  const std::string ca = test::fake_commit(1), cb = test::fake_commit(2), cc = test::fake_commit(3);
  const std::string ea = a.add_file(ca, "w.bin", std::string(400'000, 'a'), true);
  const std::string eb = b.add_file(cb, "w.bin", std::string(400'000, 'b'), true);
  const std::string ec = c.add_file(cc, "w.bin", std::string(400'000, 'c'), true);
  a.set_ref("main", ca);
  b.set_ref("main", cb);
  c.set_ref("main", cc);
  // Last use: a long ago, b a while ago, c now.
  auto age = [](const fs::path& p, int seconds) {
    const timespec t[2] = {{std::time(nullptr) - seconds, 0}, {std::time(nullptr) - seconds, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), t, 0), 0);
  };
  age(a.repo_dir() / "blobs" / ea, 3000);
  age(b.repo_dir() / "blobs" / eb, 2000);
  Metrics m;
  m.declare("hubcache_gc_runs_total", "", Metrics::Type::counter);
  m.declare("hubcache_gc_freed_bytes_total", "", Metrics::Type::counter);
  InUse in_use;
  auto hold = in_use.hold(a.repo_dir() / "blobs" / ea);  // a is being served
  {
    SpaceKeeper keeper(
        root, 900'000, [&](const fs::path& blob) { return in_use.held(blob); }, m);
    const auto freed = keeper.collect();
    EXPECT_EQ(freed, 400'000u) << "1.2 MB over a 900 kB limit: down to 810 kB, one revision goes";
  }
  EXPECT_TRUE(fs::exists(a.repo_dir() / "blobs" / ea)) << "in use: kept although least recently used";
  EXPECT_FALSE(fs::exists(b.repo_dir() / "blobs" / eb)) << "the least recently used one not in use went";
  EXPECT_TRUE(fs::exists(c.repo_dir() / "blobs" / ec));
  EXPECT_EQ(m.value("hubcache_gc_runs_total"), 1);
  EXPECT_EQ(m.value("hubcache_gc_freed_bytes_total"), 400'000);
  hold.reset();
  EXPECT_FALSE(in_use.held(a.repo_dir() / "blobs" / ea));
  // Under the limit: nothing happens.
  SpaceKeeper keeper(
      root, 10'000'000, [](const fs::path&) { return false; }, m);
  EXPECT_EQ(keeper.collect(), 0u);
}
