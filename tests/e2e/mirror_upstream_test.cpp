// The mirror's upstream side against a real HTTP upstream (the fault server plays the
// Hub and its CDN): single-flight fills streamed while they arrive, revalidation,
// the upstream going down, rate limits, access checks, Xet stripping, two mirrors on
// one cache. Requests go straight into mirror::Mirror (no HTTP front: that is
// tests/e2e/mirror_test.cpp, against `hubcache serve --upstream` processes).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "layout/naming.hpp"
#include "mirror/mirror.hpp"
#include "mirror/xet.hpp"
#include "store/repo_cache.hpp"
#include "support/fault_server.hpp"
#include "support/test_support.hpp"
#include "transfer/journal.hpp"
#include "util/hash.hpp"

namespace hubcache::test {
namespace {

using mirror::Attempt;
using mirror::Mirror;
using mirror::MirrorOptions;
using mirror::Reply;
using mirror::Request;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// What a client got: the reply, and for a body the bytes it could send.
struct Received {
  Reply reply;
  std::string bytes;
  bool complete = false;  // the whole body arrived cleanly
  bool aborted = false;   // a growing body failed: the connection would be reset
  Clock::time_point first_byte{};
};

Reply ask(Mirror& m, Request r) {
  std::promise<Reply> p;
  auto f = p.get_future();
  m.handle(r, [&p](Reply reply) { p.set_value(std::move(reply)); });
  if (f.wait_for(60s) != std::future_status::ready) ADD_FAILURE() << "no reply for " << r.target;
  return f.get();
}

std::string pread_all(int fd, std::uint64_t from, std::uint64_t to) {
  std::string out(to - from, '\0');
  std::uint64_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::pread(fd, out.data() + got, out.size() - got, static_cast<off_t>(from + got));
    if (n <= 0) break;
    got += static_cast<std::uint64_t>(n);
  }
  out.resize(got);
  return out;
}

// Reads a reply's body as a server would send it (from byte `from`, as for a Range
// request): a file at once, a growing file as its bytes become available.
Received receive(Reply reply, std::uint64_t from = 0) {
  Received r;
  if (reply.file) {
    r.bytes = pread_all(reply.file->fd, from, reply.file->size);
    r.complete = r.bytes.size() == reply.file->size - from;
    r.first_byte = Clock::now();
  } else if (reply.growing) {
    struct Shared {
      std::mutex m;
      std::condition_variable cv;
      Attempt::View view;
      bool seen = false;
    };
    auto s = std::make_shared<Shared>();
    reply.growing->listen(from, [s](const Attempt::View& v) {
      std::lock_guard lock(s->m);
      s->view = v;
      s->seen = true;
      s->cv.notify_all();
      return true;
    });
    const auto size = reply.growing->size();
    std::uint64_t sent = from;
    for (;;) {
      Attempt::View v;
      {
        std::unique_lock lock(s->m);
        s->cv.wait_for(lock, 100ms, [&] {
          return s->seen && (s->view.available > sent || s->view.state != Attempt::State::growing);
        });
        v = s->view;
      }
      if (v.available > sent) {
        if (sent == from) r.first_byte = Clock::now();
        r.bytes += pread_all(reply.growing->fd(), sent, v.available);
        sent = v.available;
      }
      if (v.state == Attempt::State::failed) {
        r.aborted = true;
        break;
      }
      if (v.state == Attempt::State::complete && sent == size) {
        r.complete = true;
        break;
      }
    }
  } else {
    r.bytes = reply.body;
    r.complete = true;
  }
  r.reply = std::move(reply);
  return r;
}

Request get(const std::string& target, std::optional<std::string> token = std::nullopt) {
  Request r;
  r.method = "GET";
  r.target = target;
  r.host = "127.0.0.1:1";
  if (token) r.authorization = "Bearer " + *token;
  return r;
}

// The request a client makes when it follows a redirect to the mirror's CDN.
Request follow(const Reply& redirect) {
  Request r;
  r.method = "GET";
  r.cdn = true;
  const std::string loc = redirect.header("Location").value_or("");
  const auto path = loc.find('/', loc.find("//") + 2);
  r.target = path == std::string::npos ? "" : loc.substr(path);
  return r;
}

class MirrorUpstream : public ::testing::Test {
 protected:
  std::unique_ptr<FaultServer> server = std::make_unique<FaultServer>();
  TempDir dir;
  fs::path cache = dir / "cache";

  MirrorUpstream() { fs::create_directories(cache); }

  MirrorOptions options() const {
    MirrorOptions o;
    o.cache_dir = cache;
    o.upstream = server->url();
    o.log = false;
    return o;
  }
  std::unique_ptr<Mirror> make(MirrorOptions o) {
    auto m = std::make_unique<Mirror>(std::move(o));
    m->set_cdn_port(1);
    return m;
  }
  fs::path repo_dir(const std::string& repo) const { return cache / layout::repo_folder_name(repo, RepoType::model); }
};

TEST_F(MirrorUpstream, ColdLfsFileCrossesTheUpstreamOnceAndStreamsToEveryReader) {
  const std::string data = test_bytes(24 << 20, 1);
  server->add_file("org/m", "model.safetensors", data, true);
  FaultServer::Faults f;
  f.cdn_total_bps = 24 << 20;  // about a second for the whole file
  server->set_faults(f);
  auto m = make(options());
  constexpr int kReaders = 12;
  std::vector<std::future<Received>> readers;
  for (int i = 0; i < kReaders; ++i)
    readers.push_back(std::async(std::launch::async, [&] {
      Reply redirect = ask(*m, get("/org/m/resolve/main/model.safetensors"));
      EXPECT_EQ(redirect.status, 302);
      return receive(ask(*m, follow(redirect)));
    }));
  for (auto& r : readers) {
    Received got = r.get();
    EXPECT_TRUE(got.complete);
    EXPECT_EQ(got.bytes.size(), data.size());
    EXPECT_TRUE(got.bytes == data) << "byte-exact";
    EXPECT_LT(got.first_byte, server->last_cdn_byte()) << "streamed while it arrived, not stored and forwarded";
  }
  EXPECT_LE(server->cdn_bytes_sent(), data.size() + data.size() / 20) << "one transfer for every reader";
  EXPECT_EQ(server->count("HEAD", "/resolve/main/model.safetensors", "hub"), 1u) << "one metadata request";
  // The cache it filled is a normal hub cache.
  const std::string commit = server->commit_of("org/m");
  EXPECT_EQ(read_file(repo_dir("org/m") / "refs/main"), commit);
  EXPECT_EQ(read_file(repo_dir("org/m") / "snapshots" / commit / "model.safetensors"), data);
  EXPECT_GE(m->metrics().value("hubcache_upstream_bytes_total"), double(data.size()));
  // Now cached: served from disk, nothing more upstream.
  server->clear_log();
  Received again = receive(ask(*m, follow(ask(*m, get("/org/m/resolve/main/model.safetensors")))));
  EXPECT_TRUE(again.reply.file.has_value());
  EXPECT_TRUE(again.bytes == data);
  EXPECT_EQ(server->cdn_bytes_sent(), 0u);
}

TEST_F(MirrorUpstream, ARangeAheadOfTheTransferIsFetchedFirst) {
  const std::string data = test_bytes(24 << 20, 6);
  server->add_file("org/m", "w.bin", data, true);
  FaultServer::Faults f;
  f.cdn_total_bps = 12 << 20;  // two seconds for the whole file
  server->set_faults(f);
  auto m = make(options());
  const std::uint64_t from = (20u << 20) + 12345;  // not on a chunk boundary
  Reply redirect = ask(*m, get("/org/m/resolve/main/w.bin"));
  auto whole = std::async(std::launch::async, [&] { return receive(ask(*m, follow(redirect))); });
  Received tail = receive(ask(*m, follow(redirect)), from);
  EXPECT_TRUE(tail.complete);
  EXPECT_TRUE(tail.bytes == data.substr(from)) << "byte-exact from the range's start";
  EXPECT_TRUE(whole.get().bytes == data);
  // The engine took the reader's offset out of the queue as soon as a connection was
  // free, long before the transfer from the front would have reached it.
  std::vector<std::string> cdn_ranges;
  for (const auto& r : server->log())
    if (r.server == "cdn") cdn_ranges.push_back(r.range);
  const std::string wanted = "bytes=" + std::to_string(from) + "-";
  auto it =
      std::find_if(cdn_ranges.begin(), cdn_ranges.end(), [&](const std::string& r) { return r.rfind(wanted, 0) == 0; });
  ASSERT_NE(it, cdn_ranges.end()) << "no range started at the reader's offset";
  EXPECT_LE(it - cdn_ranges.begin(), 12) << "it came among the first requests";
  EXPECT_LE(server->cdn_bytes_sent(), data.size() + data.size() / 20);
}

TEST_F(MirrorUpstream, RegularFilesStreamFromResolveWithTheHubsHeaders) {
  const std::string text = "{\"hidden_size\": 8}\n";
  server->add_file("org/m", "config.json", text);
  auto m = make(options());
  Request head = get("/org/m/resolve/main/config.json");
  head.method = "HEAD";
  Reply h = ask(*m, head);
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.head_length, text.size()) << "HEAD of an uncached file: its size, no transfer";
  EXPECT_EQ(h.header("ETag"), "\"" + util::git_blob_sha1_hex(text) + "\"");
  EXPECT_EQ(h.header("X-Repo-Commit"), server->commit_of("org/m"));
  EXPECT_EQ(h.header("Cache-Control"), "public, max-age=60") << "a branch: short";
  Received got = receive(ask(*m, get("/org/m/resolve/main/config.json")));
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.bytes, text);
  Reply pinned = ask(*m, get("/org/m/resolve/" + server->commit_of("org/m") + "/config.json"));
  EXPECT_TRUE(pinned.file.has_value());
  EXPECT_EQ(pinned.header("Cache-Control"), "public, max-age=31536000") << "a commit: long";
  Request inm = get("/org/m/resolve/main/config.json");
  inm.if_none_match = "\"" + util::git_blob_sha1_hex(text) + "\"";
  EXPECT_EQ(ask(*m, inm).status, 304);
}

TEST_F(MirrorUpstream, BranchesAreReResolvedAtMostEveryInterval) {
  server->add_file("org/m", "a.txt", "one");
  const std::string c1 = server->commit_of("org/m");
  auto o = options();
  o.revalidate = 3600s;
  auto slow = make(o);
  EXPECT_EQ(ask(*slow, get("/org/m/resolve/main/a.txt")).header("X-Repo-Commit"), c1);
  server->bump_commit("org/m");
  const std::string c2 = server->commit_of("org/m");
  server->clear_log();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(ask(*slow, get("/org/m/resolve/main/a.txt")).header("X-Repo-Commit"), c1) << "still fresh";
  EXPECT_EQ(server->log().size(), 0u) << "no upstream request within the interval";
  o.revalidate = 0s;
  auto eager = make(o);
  EXPECT_EQ(ask(*eager, get("/org/m/resolve/main/a.txt")).header("X-Repo-Commit"), c2);
  EXPECT_EQ(read_file(repo_dir("org/m") / "refs/main"), c2);
  // A commit is never asked again once its file is cached.
  server->clear_log();
  EXPECT_EQ(receive(ask(*eager, get("/org/m/resolve/" + c2 + "/a.txt"))).bytes, "one");
  EXPECT_EQ(receive(ask(*eager, get("/org/m/resolve/" + c2 + "/a.txt"))).bytes, "one");
  EXPECT_EQ(server->count("HEAD", "/resolve/" + c2, "hub"), 0u) << "facts of a commit are kept";
}

TEST_F(MirrorUpstream, MissingFilesAreRememberedForTheInterval) {
  server->add_file("org/m", "a.txt", "one");
  auto m = make(options());
  Reply r = ask(*m, get("/org/m/resolve/main/adapter_config.json"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("X-Error-Code"), "EntryNotFound");
  const std::string commit = server->commit_of("org/m");
  EXPECT_EQ(r.header("X-Repo-Commit"), commit);
  EXPECT_TRUE(fs::is_regular_file(repo_dir("org/m") / ".no_exist" / commit / "adapter_config.json"));
  server->clear_log();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ask(*m, get("/org/m/resolve/main/adapter_config.json")).status, 404);
  EXPECT_EQ(server->count("HEAD", "adapter_config", "hub"), 0u);
}

TEST_F(MirrorUpstream, UpstreamDownServesWhatIsCachedAndFailsTheRestClearly) {
  server->add_file("org/m", "a.txt", "cached");
  server->add_file("org/m", "b.txt", "never fetched");
  server->add_file("org/m", "w.bin", test_bytes(300'000, 2), true);
  const std::string commit = server->commit_of("org/m");
  auto o = options();
  o.revalidate = 0s;  // every branch request asks upstream first
  auto m = make(o);
  ASSERT_EQ(receive(ask(*m, get("/org/m/resolve/main/a.txt"))).bytes, "cached");
  ASSERT_TRUE(receive(ask(*m, follow(ask(*m, get("/org/m/resolve/main/w.bin"))))).complete);
  ASSERT_EQ(ask(*m, get("/api/models/org/m/tree/main?recursive=true")).status, 200);
  server.reset();  // the upstream is gone

  Received a = receive(ask(*m, get("/org/m/resolve/main/a.txt")));
  EXPECT_EQ(a.reply.status, 200);
  EXPECT_EQ(a.bytes, "cached") << "a branch is served at its last known commit";
  EXPECT_EQ(a.reply.header("X-Repo-Commit"), commit);
  EXPECT_EQ(receive(ask(*m, get("/org/m/resolve/" + commit + "/a.txt"))).bytes, "cached");
  Reply w = ask(*m, get("/org/m/resolve/main/w.bin"));
  EXPECT_EQ(w.status, 302);
  EXPECT_EQ(receive(ask(*m, follow(w))).bytes.size(), 300'000u);
  Reply tree = ask(*m, get("/api/models/org/m/tree/main?recursive=true"));
  EXPECT_EQ(tree.status, 200) << "the listing of the last known commit";
  EXPECT_NE(tree.body.find("b.txt"), std::string::npos);

  Reply b = ask(*m, get("/org/m/resolve/main/b.txt"));
  EXPECT_EQ(b.status, 502);
  const std::string why = b.header("X-Error-Message").value_or("");
  EXPECT_NE(why.find("cannot be reached"), std::string::npos) << why;
  EXPECT_NE(why.find("b.txt"), std::string::npos) << why;
  EXPECT_GE(m->metrics().value("hubcache_stale_answers_total"), 1);
  // A repo never seen cannot be checked: it fails too (never served as public by guess).
  EXPECT_EQ(ask(*m, get("/org/other/resolve/main/a.txt")).status, 502);
}

TEST_F(MirrorUpstream, RateLimitsAreHonouredOnceForAllClients) {
  server->add_file("org/m", "a.txt", "one");
  auto m = make(options());
  ASSERT_EQ(receive(ask(*m, get("/org/m/resolve/main/a.txt"))).bytes, "one");  // visibility, commit, file known
  FaultServer::Faults f;
  f.fail_count = 1000;
  f.fail_status = 429;
  f.fail_server = "hub";
  f.retry_after = "30";
  f.ratelimit = "\"resolvers\";r=0;t=30";
  server->set_faults(f);
  server->clear_log();
  Reply first = ask(*m, get("/org/m/resolve/main/missing-first.txt"));
  EXPECT_EQ(first.status, 429);
  std::vector<std::future<Reply>> clients;
  for (int i = 0; i < 16; ++i)
    clients.push_back(std::async(std::launch::async, [&, i] {
      return ask(*m, get("/org/m/resolve/main/missing-" + std::to_string(i) + ".txt"));
    }));
  for (auto& c : clients) {
    Reply r = c.get();
    EXPECT_EQ(r.status, 429);
    auto ra = r.header("Retry-After");
    ASSERT_TRUE(ra);
    EXPECT_GE(std::stoi(*ra), 28);
    EXPECT_EQ(r.header("RateLimit"), "\"resolvers\";r=0;t=30");
  }
  EXPECT_EQ(server->log().size(), 1u) << "one request reached the upstream; the other 16 were held back";
  // What is cached is still served meanwhile.
  EXPECT_EQ(receive(ask(*m, get("/org/m/resolve/main/a.txt"))).bytes, "one");
  EXPECT_EQ(server->log().size(), 1u);
  EXPECT_EQ(m->metrics().value("hubcache_upstream_rate_limited_total"), 1);
}

TEST_F(MirrorUpstream, PrivateAndGatedReposNeedTheClientsOwnTokenEvenWhenCached) {
  server->add_file("org/private", "a.txt", "secret");
  server->set_private("org/private", "hf_owner");
  server->add_file("org/gated", "a.txt", "licensed");
  server->set_gated("org/gated");
  server->grant("org/gated", "hf_granted");
  auto m = make(options());
  // Filled by a client that may read them.
  EXPECT_EQ(receive(ask(*m, get("/org/private/resolve/main/a.txt", "hf_owner"))).bytes, "secret");
  EXPECT_EQ(receive(ask(*m, get("/org/gated/resolve/main/a.txt", "hf_granted"))).bytes, "licensed");
  ASSERT_TRUE(fs::exists(repo_dir("org/gated") / "refs/main"));

  Reply r = ask(*m, get("/org/private/resolve/main/a.txt"));
  EXPECT_EQ(r.status, 401) << "cached, yet no token: refused as the Hub would";
  EXPECT_TRUE(r.body.find("secret") == std::string::npos && !r.file && !r.growing);
  EXPECT_EQ(ask(*m, get("/org/private/resolve/main/a.txt", "hf_stranger")).status, 401);
  r = ask(*m, get("/org/gated/resolve/main/a.txt"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.header("X-Error-Code"), "GatedRepo");
  r = ask(*m, get("/org/gated/resolve/main/a.txt", "hf_not_granted"));
  EXPECT_EQ(r.status, 403) << "the upstream's refusal, replayed";
  EXPECT_EQ(r.header("X-Error-Code"), "GatedRepo");
  EXPECT_EQ(ask(*m, get("/api/models/org/private/tree/main", "hf_stranger")).status, 401);

  // An answer is kept a while per token and repo: one check for many requests.
  server->clear_log();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(receive(ask(*m, get("/org/gated/resolve/main/a.txt", "hf_granted"))).bytes, "licensed");
  EXPECT_EQ(server->log().size(), 0u);

  // --share-upstream-token: clients without access use the mirror's own.
  auto o = options();
  o.upstream_token = "hf_granted";
  auto unshared = make(o);
  EXPECT_EQ(ask(*unshared, get("/org/gated/resolve/main/a.txt")).status, 401) << "off by default";
  o.share_upstream_token = true;
  auto shared = make(o);
  EXPECT_EQ(receive(ask(*shared, get("/org/gated/resolve/main/a.txt"))).bytes, "licensed");
  EXPECT_EQ(ask(*shared, get("/org/private/resolve/main/a.txt")).status, 401) << "its token has no access there";
  // Tokens never reach the metrics.
  EXPECT_EQ(m->render_metrics().find("hf_"), std::string::npos);
}

TEST_F(MirrorUpstream, XetSignalsNeverReachClientsAndTheDownloadIsPlainHttp) {
  const std::string data = test_bytes(200'000, 3);
  server->add_file("org/x", "w.bin", data, true);
  server->add_file("org/x", "config.json", "{}");
  server->set_xet(true);
  auto m = make(options());
  Reply redirect = ask(*m, get("/org/x/resolve/main/w.bin"));
  EXPECT_EQ(redirect.status, 302);
  for (const auto& [k, v] : redirect.headers) EXPECT_FALSE(mirror::is_xet_header(k, v)) << k << ": " << v;
  EXPECT_EQ(receive(ask(*m, follow(redirect))).bytes, data);
  for (const std::string target :
       {"/api/models/org/x/tree/main?recursive=true", "/api/models/org/x/revision/main", "/api/models/org/x"}) {
    Reply r = ask(*m, get(target));
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_EQ(r.body.find("xetHash"), std::string::npos) << target << ": " << r.body;
    EXPECT_EQ(r.body.find("\"xetEnabled\":true"), std::string::npos) << target << ": " << r.body;
  }
  Request paths = get("/api/models/org/x/paths-info/main");
  paths.method = "POST";
  paths.content_type = "application/json";
  paths.body = R"({"paths":["w.bin","config.json"],"expand":true})";
  Reply p = ask(*m, paths);
  EXPECT_EQ(p.status, 200);
  EXPECT_NE(p.body.find("w.bin"), std::string::npos);
  EXPECT_EQ(p.body.find("xetHash"), std::string::npos) << p.body;
  EXPECT_EQ(ask(*m, get("/api/models/org/x/xet-read-token/main")).status, 404);
  EXPECT_EQ(server->count("GET", "xet-read-token"), 0u) << "never asked upstream";
}

TEST_F(MirrorUpstream, WrongBytesNeverCompleteAndNothingIsPublished) {
  const std::string data = test_bytes(3 << 20, 4);
  server->add_file("org/m", "w.bin", data, true);
  FaultServer::Faults f;
  f.wrong_bytes = true;
  server->set_faults(f);
  auto m = make(options());
  Reply redirect = ask(*m, get("/org/m/resolve/main/w.bin"));
  Received got = receive(ask(*m, follow(redirect)));
  EXPECT_FALSE(got.complete);
  EXPECT_TRUE(got.aborted || got.reply.status >= 500) << "never a clean response";
  EXPECT_LT(got.bytes.size(), data.size()) << "the last byte waits for the hash";
  EXPECT_FALSE(fs::exists(repo_dir("org/m") / "blobs" / util::sha256_hex(data)));
  // The next request starts over, and gets it right.
  server->set_faults({});
  Received again = receive(ask(*m, follow(ask(*m, get("/org/m/resolve/main/w.bin")))));
  EXPECT_TRUE(again.complete) << again.reply.status << " " << again.reply.body;
  EXPECT_TRUE(again.bytes == data);
}

TEST_F(MirrorUpstream, TwoMirrorsOnOneCacheMakeOneTransfer) {
  const std::string data = test_bytes(12 << 20, 5);
  server->add_file("org/m", "w.bin", data, true);
  FaultServer::Faults f;
  f.cdn_total_bps = 12 << 20;  // a second
  server->set_faults(f);
  // Two mirrors (as two serve processes): their download locks exclude each other.
  auto a = make(options());
  auto b = make(options());
  Reply ra = ask(*a, get("/org/m/resolve/main/w.bin"));
  auto first = std::async(std::launch::async, [&] { return receive(ask(*a, follow(ra))); });
  // B asks once A's transfer is under way.
  const auto blobs = repo_dir("org/m") / "blobs";
  for (int i = 0; i < 500 && partials_progress(blobs) == 0; ++i) std::this_thread::sleep_for(10ms);
  Received second = receive(ask(*b, follow(ask(*b, get("/org/m/resolve/main/w.bin")))));
  Received one = first.get();
  EXPECT_TRUE(one.complete && one.bytes == data);
  EXPECT_TRUE(second.complete && second.bytes == data);
  EXPECT_LE(server->cdn_bytes_sent(), data.size() + data.size() / 20) << "one upstream transfer";
  EXPECT_EQ(b->metrics().value("hubcache_upstream_fills_total", {{"result", "followed"}}), 1);
  EXPECT_EQ(b->metrics().value("hubcache_upstream_bytes_total"), 0);
}

// Another tool (Python's hf_hub_download, @huggingface/hub) downloads the blob: it holds
// the lock and writes its partial front to back, with no journal. The mirror streams
// what that partial holds and never fetches the file itself.
TEST_F(MirrorUpstream, FollowsAnotherToolsPartialWithoutFetching) {
  const std::string data = test_bytes(2 << 20, 7);
  server->add_file("org/m", "w.bin", data, true);
  const std::string etag = util::sha256_hex(data);
  store::RepoCache rc(fs::canonical(cache), "org/m", RepoType::model);
  auto m = make(options());
  Reply redirect = ask(*m, get("/org/m/resolve/main/w.bin"));
  ASSERT_EQ(redirect.status, 302);
  auto lock = std::make_unique<store::FileLock>(rc.lock_path(etag));
  fs::create_directories(rc.blobs_dir());
  const fs::path partial = rc.blobs_dir() / (etag + ".0badf00d.incomplete");
  write_file(partial, data.substr(0, 1 << 20));
  auto reader = std::async(std::launch::async, [&] { return receive(ask(*m, follow(redirect))); });
  // The reader streams the half that is there, then waits.
  for (int i = 0; i < 500 && m->metrics().value("hubcache_upstream_waiting_clients") == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(m->metrics().value("hubcache_upstream_waiting_clients"), 1);
  {
    std::ofstream out(partial, std::ios::app | std::ios::binary);
    out << data.substr(1 << 20);
  }
  fs::rename(partial, rc.blob_path(etag));
  lock.reset();
  Received got = reader.get();
  EXPECT_TRUE(got.complete);
  EXPECT_TRUE(got.bytes == data);
  EXPECT_EQ(server->cdn_bytes_sent(), 0u) << "the mirror fetched nothing itself";
  EXPECT_EQ(read_file(rc.pointer_path(server->commit_of("org/m"), "w.bin")), data) << "and linked the snapshot";
}

// A hubcache download that holds the lock dies half-way (its partial and journal stay):
// the following mirror takes the lock, resumes that very partial and its readers go on.
TEST_F(MirrorUpstream, TakesOverAPartialWhoseOwnerDied) {
  const std::string data = test_bytes(16 << 20, 8);
  server->add_file("org/m", "w.bin", data, true);
  const std::string etag = util::sha256_hex(data);
  store::RepoCache rc(fs::canonical(cache), "org/m", RepoType::model);
  auto m = make(options());
  Reply redirect = ask(*m, get("/org/m/resolve/main/w.bin"));
  auto lock = std::make_unique<store::FileLock>(rc.lock_path(etag));
  fs::create_directories(rc.blobs_dir());
  const fs::path partial = rc.blobs_dir() / (etag + ".deadbeef.incomplete");
  std::string sized = data.substr(0, 8 << 20);
  sized.resize(data.size(), '\0');  // presized, as the engine makes them
  write_file(partial, sized);
  transfer::Journal j;
  j.etag = etag;
  j.size = data.size();
  j.done.add(0, 8 << 20);
  ASSERT_TRUE(transfer::write_journal(partial, j));
  auto reader = std::async(std::launch::async, [&] { return receive(ask(*m, follow(redirect))); });
  for (int i = 0; i < 500 && m->metrics().value("hubcache_upstream_waiting_clients") == 0; ++i)
    std::this_thread::sleep_for(10ms);
  lock.reset();  // the owner is gone
  Received got = reader.get();
  EXPECT_TRUE(got.complete);
  EXPECT_TRUE(got.bytes == data);
  EXPECT_LE(server->cdn_bytes_sent(), data.size() / 2 + (1 << 20)) << "only the missing half was fetched";
  EXPECT_TRUE(fs::is_regular_file(rc.blob_path(etag)));
}

TEST_F(MirrorUpstream, ListingsAreKeptPerCommitAndPaginated) {
  for (int i = 0; i < 30; ++i) server->add_file("org/m", "f" + std::to_string(100 + i) + ".txt", "x");
  auto m = make(options());
  Reply r = ask(*m, get("/api/models/org/m/tree/main?recursive=true&limit=20"));
  EXPECT_EQ(r.status, 200);
  auto link = r.header("Link");
  ASSERT_TRUE(link);
  EXPECT_NE(link->find("cursor=20"), std::string::npos) << *link;
  EXPECT_NE(link->find("; rel=\"next\""), std::string::npos);
  Reply rest = ask(*m, get("/api/models/org/m/tree/main?recursive=true&limit=20&cursor=20"));
  EXPECT_NE(rest.body.find("f129.txt"), std::string::npos);
  EXPECT_FALSE(rest.header("Link"));
  EXPECT_EQ(server->count("GET", "/tree/"), 1u) << "one upstream listing for both pages";
  const std::string commit = server->commit_of("org/m");
  EXPECT_TRUE(fs::is_regular_file(repo_dir("org/m") / "trees" / (commit + ".json")))
      << "written as Python's cached listing";
  // The tree gave every file's facts: a resolve at the commit needs no HEAD.
  server->clear_log();
  EXPECT_EQ(receive(ask(*m, get("/org/m/resolve/" + commit + "/f100.txt"))).bytes, "x");
  EXPECT_EQ(server->count("HEAD", "/resolve/"), 0u);
}

TEST_F(MirrorUpstream, AllowAndDenyRestrictWhatIsMirrored) {
  server->add_file("org/m", "a.txt", "one");
  server->add_file("other/m", "a.txt", "two");
  auto o = options();
  o.allow = {"org/*"};
  o.deny = {"org/secret*"};
  auto m = make(o);
  EXPECT_EQ(ask(*m, get("/org/m/resolve/main/a.txt")).status, 200);
  Reply r = ask(*m, get("/other/m/resolve/main/a.txt"));
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.header("X-Error-Message").value_or("").find("--allow"), std::string::npos);
  EXPECT_EQ(ask(*m, get("/api/models/org/secret-x/tree/main")).status, 403);
  EXPECT_EQ(server->count("GET", "other/m"), 0u);
}

}  // namespace
}  // namespace hubcache::test
