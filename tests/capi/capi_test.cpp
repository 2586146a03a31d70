// The C API (include/hubcache/hubcache.h) end to end, against real local servers: every
// status with its message, progress, cancellation from another thread, concurrent calls,
// snapshots, the flat layout, and allocation failures that must never escape as C++
// exceptions. examples/fetch_model.c, linked against libhubcache.so, runs as a process.
//
// This binary replaces the global operator new to fail chosen allocations (alloc_faults.cpp),
// so it is separate from the other test binaries.
#include <gtest/gtest.h>
#include <hubcache/hubcache.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <new>
#include <regex>
#include <set>
#include <thread>

#include "alloc_faults.hpp"
#include "hubcache/error.hpp"
#include "support/fault_server.hpp"
#include "support/fs_faults.hpp"
#include "support/serve_process.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache::test;
namespace fs = std::filesystem;

namespace {

// One call's outcome, with the C strings copied and freed.
struct Outcome {
  hubcache_status status = HUBCACHE_OK;
  std::string message;
  std::string path;
};

Outcome take(hubcache_status status, hubcache_error* error, char* path) {
  Outcome out{status, error ? hubcache_error_message(error) : "", path ? path : ""};
  if (status == HUBCACHE_OK) {
    EXPECT_EQ(error, nullptr);
  } else {
    EXPECT_NE(error, nullptr) << "a failure always comes with an error object";
    EXPECT_EQ(hubcache_error_code(error), status);
    EXPECT_EQ(path, nullptr) << "outputs are NULL on failure";
  }
  hubcache_error_free(error);
  hubcache_free(path);
  return out;
}

// Runs `f` on a thread of its own. The library keeps one HTTP connection cache per thread
// (kept-alive connections, as an application wants); a thread that ends closes its
// connections, so the test's server does not wait for them to time out when it stops.
template <class F>
void on_own_thread(F&& f) {
  std::thread(std::forward<F>(f)).join();
}

Outcome fetch(const char* repo, const char* file, const hubcache_options* o) {
  char* path = nullptr;
  hubcache_error* error = nullptr;
  hubcache_status s = HUBCACHE_OK;
  on_own_thread([&] { s = hubcache_fetch(repo, file, o, &path, &error); });
  return take(s, error, path);
}

Outcome path_of(const char* repo, const char* file, const hubcache_options* o) {
  char* path = nullptr;
  hubcache_error* error = nullptr;
  auto s = hubcache_path(repo, file, o, &path, &error);
  return take(s, error, path);
}

bool cached(const char* repo, const char* file, const hubcache_options* o) {
  int yes = -1;
  hubcache_error* error = nullptr;
  EXPECT_EQ(hubcache_is_cached(repo, file, o, &yes, &error), HUBCACHE_OK) << hubcache_error_message(error);
  hubcache_error_free(error);
  return yes == 1;
}

struct Options {
  hubcache_options* o = hubcache_options_new();
  Options() { EXPECT_NE(o, nullptr); }
  ~Options() { hubcache_options_free(o); }
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;
  operator hubcache_options*() const { return o; }
};

class CApi : public ::testing::Test {
 protected:
  void SetUp() override {
    server.add_file("org/m", "config.json", "{\"model_type\": \"bert\"}\n");
    server.add_file("org/m", "onnx/model.onnx", big, /*lfs=*/true);
    server.add_file("org/m", "tokenizer.json", "{}\n");
    commit = server.commit_of("org/m");
    ASSERT_EQ(hubcache_options_set_endpoint(opts, server.url().c_str()), HUBCACHE_OK);
    ASSERT_EQ(hubcache_options_set_cache_dir(opts, (dir / "cache").c_str()), HUBCACHE_OK);
  }
  fs::path pointer(const std::string& file) const { return dir / "cache/models--org--m/snapshots" / commit / file; }

  TempDir dir;
  FaultServer server;
  const std::string big = test_bytes(2 * 1000 * 1000, 7);
  std::string commit;
  Options opts;
};

// ---- basics ----------------------------------------------------------------------------

TEST(CApiBasics, StatusNamesAreTheErrorCodesOfTheLibraryAndTheCli) {
  EXPECT_STREQ(hubcache_status_name(HUBCACHE_OK), "ok");
  for (int s = 1; s <= 13; ++s)
    EXPECT_EQ(hubcache_status_name(static_cast<hubcache_status>(s)),
              hubcache::to_string(static_cast<hubcache::ErrorCode>(s)));
  EXPECT_STREQ(hubcache_status_name(HUBCACHE_ERR_NOT_CACHED), "not_cached");
  EXPECT_STREQ(hubcache_status_name(static_cast<hubcache_status>(14)), "unknown");
  EXPECT_STREQ(hubcache_status_name(static_cast<hubcache_status>(-1)), "unknown");
}

TEST(CApiBasics, Versions) {
  EXPECT_TRUE(std::regex_match(hubcache_version(), std::regex(R"(\d+\.\d+\.\d+)"))) << hubcache_version();
  EXPECT_EQ(hubcache_api_version(), HUBCACHE_API_VERSION);
}

TEST(CApiBasics, NullArgumentsAndHandlesAreErrorsNotCrashes) {
  auto r = fetch(nullptr, "config.json", nullptr);
  EXPECT_EQ(r.status, HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("repo is NULL"), std::string::npos) << r.message;
  r = fetch("org/m", nullptr, nullptr);
  EXPECT_EQ(r.status, HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_NE(r.message.find("file is NULL"), std::string::npos) << r.message;
  // No error object wanted, no output wanted.
  EXPECT_EQ(hubcache_fetch(nullptr, nullptr, nullptr, nullptr, nullptr), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_snapshot(nullptr, nullptr, nullptr, nullptr, nullptr), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_lookup(nullptr, "a", nullptr, nullptr, nullptr, nullptr, nullptr), HUBCACHE_ERR_INVALID_ARGUMENT);

  EXPECT_EQ(hubcache_options_set_revision(nullptr, "main"), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_options_set_progress(nullptr, nullptr, nullptr), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_snapshot_options_add_allow_pattern(nullptr, "*"), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_error_code(nullptr), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(hubcache_error_message(nullptr), "");
  EXPECT_EQ(hubcache_snapshot_result_file_count(nullptr), 0u);
  EXPECT_EQ(hubcache_snapshot_result_path(nullptr), nullptr);
  EXPECT_EQ(hubcache_cancel_is_triggered(nullptr), 0);
  hubcache_cancel_trigger(nullptr);
  hubcache_options_free(nullptr);
  hubcache_snapshot_options_free(nullptr);
  hubcache_snapshot_result_free(nullptr);
  hubcache_cancel_free(nullptr);
  hubcache_error_free(nullptr);
  hubcache_free(nullptr);
}

TEST(CApiBasics, SettersRefuseValuesOutOfRange) {
  Options o;
  EXPECT_EQ(hubcache_options_set_connections(o, 0), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_options_set_connections(o, 65), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_options_set_connections(o, 64), HUBCACHE_OK);
  EXPECT_EQ(hubcache_options_set_offline(o, 2), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_options_set_offline(o, -1), HUBCACHE_OK);
  EXPECT_EQ(hubcache_options_set_repo_type(o, static_cast<hubcache_repo_type>(3)), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_options_set_layout(o, static_cast<hubcache_layout>(2)), HUBCACHE_ERR_INVALID_ARGUMENT);
  for (const char* name : {"", ".", "..", "a/b", "/abs"})
    EXPECT_EQ(hubcache_options_set_app_name(o, name), HUBCACHE_ERR_INVALID_ARGUMENT) << name;
  EXPECT_EQ(hubcache_options_set_app_name(o, "image_vision"), HUBCACHE_OK);
  hubcache_snapshot_options* so = hubcache_snapshot_options_new();
  EXPECT_EQ(hubcache_snapshot_options_set_max_workers(so, 0), HUBCACHE_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(hubcache_snapshot_options_add_ignore_pattern(so, nullptr), HUBCACHE_ERR_INVALID_ARGUMENT);
  hubcache_snapshot_options_free(so);
}

TEST(CApiBasics, CacheRootIsCreatedOnlyWhenAskedAndIsAbsolute) {
  TempDir dir;
  Options o;
  const fs::path want = dir / "a/b";
  ASSERT_EQ(hubcache_options_set_cache_dir(o, want.c_str()), HUBCACHE_OK);
  char* root = nullptr;
  ASSERT_EQ(hubcache_resolve_cache_root(o, &root, nullptr), HUBCACHE_OK);
  EXPECT_EQ(root, want.string());
  hubcache_free(root);
  EXPECT_FALSE(fs::exists(want)) << "resolving writes nothing";
  ASSERT_EQ(hubcache_cache_root(o, &root, nullptr), HUBCACHE_OK);
  EXPECT_EQ(root, want.string());
  hubcache_free(root);
  EXPECT_TRUE(fs::is_directory(want));

  // A root that cannot be made: a file is in the way.
  write_file(dir / "file", "x");
  ASSERT_EQ(hubcache_options_set_cache_dir(o, (dir / "file/cache").c_str()), HUBCACHE_OK);
  hubcache_error* error = nullptr;
  EXPECT_EQ(hubcache_cache_root(o, &root, &error), HUBCACHE_ERR_IO);
  EXPECT_EQ(root, nullptr);
  EXPECT_NE(std::string(hubcache_error_message(error)).find("file/cache"), std::string::npos)
      << hubcache_error_message(error);
  hubcache_error_free(error);
}

// ---- one file --------------------------------------------------------------------------

struct Progress {
  std::mutex mutex;
  std::vector<std::tuple<std::string, std::string, std::uint64_t, std::uint64_t, bool>> events;
  static void record(const hubcache_progress* e, void* user) {
    auto* self = static_cast<Progress*>(user);
    std::lock_guard lock(self->mutex);
    self->events.emplace_back(hubcache_progress_repo(e), hubcache_progress_file(e), hubcache_progress_downloaded(e),
                              hubcache_progress_total(e), hubcache_progress_finished(e) == 1);
  }
};

TEST_F(CApi, FetchDownloadsWithProgressThenHitsOfflineWithoutARequest) {
  Progress progress;
  ASSERT_EQ(hubcache_options_set_progress(opts, Progress::record, &progress), HUBCACHE_OK);
  EXPECT_FALSE(cached("org/m", "onnx/model.onnx", opts));

  auto r = fetch("org/m", "onnx/model.onnx", opts);
  ASSERT_EQ(r.status, HUBCACHE_OK) << r.message;
  EXPECT_EQ(r.path, pointer("onnx/model.onnx").string());
  EXPECT_EQ(read_file(r.path), big);
  ASSERT_FALSE(progress.events.empty());
  std::uint64_t last = 0;
  for (const auto& [repo, file, done, total, finished] : progress.events) {
    EXPECT_EQ(repo, "org/m");
    EXPECT_EQ(file, "onnx/model.onnx");
    EXPECT_EQ(total, big.size());
    EXPECT_GE(done, last) << "progress only grows";
    last = done;
  }
  EXPECT_TRUE(std::get<4>(progress.events.back()));
  EXPECT_EQ(std::get<2>(progress.events.back()), big.size());

  // Hits: the lookups and an offline fetch send nothing.
  server.clear_log();
  progress.events.clear();
  EXPECT_TRUE(cached("org/m", "onnx/model.onnx", opts));
  EXPECT_EQ(path_of("org/m", "onnx/model.onnx", opts).path, r.path);
  hubcache_lookup_status status = HUBCACHE_LOOKUP_UNKNOWN;
  char *found = nullptr, *found_commit = nullptr;
  ASSERT_EQ(hubcache_lookup("org/m", "onnx/model.onnx", opts, &status, &found, &found_commit, nullptr), HUBCACHE_OK);
  EXPECT_EQ(status, HUBCACHE_LOOKUP_CACHED);
  EXPECT_EQ(std::string(found), r.path);
  EXPECT_EQ(std::string(found_commit), commit);
  hubcache_free(found);
  hubcache_free(found_commit);
  // Not downloaded: unknown, but the commit is known and so is the path.
  ASSERT_EQ(hubcache_lookup("org/m", "config.json", opts, &status, &found, &found_commit, nullptr), HUBCACHE_OK);
  EXPECT_EQ(status, HUBCACHE_LOOKUP_UNKNOWN);
  EXPECT_EQ(found, nullptr);
  EXPECT_EQ(std::string(found_commit), commit);
  hubcache_free(found_commit);
  EXPECT_EQ(path_of("org/m", "config.json", opts).path, pointer("config.json").string());
  EXPECT_FALSE(cached("org/m", "config.json", opts));

  ASSERT_EQ(hubcache_options_set_offline(opts, 1), HUBCACHE_OK);
  EXPECT_EQ(fetch("org/m", "onnx/model.onnx", opts).path, r.path);
  ASSERT_EQ(hubcache_options_set_revision(opts, commit.c_str()), HUBCACHE_OK);
  EXPECT_EQ(fetch("org/m", "onnx/model.onnx", opts).path, r.path);
  EXPECT_TRUE(server.log().empty()) << server.log().size() << " requests";
  EXPECT_TRUE(progress.events.empty()) << "a hit reports no progress";

  // Offline, a miss is not_cached, naming the file and what to do.
  auto miss = fetch("org/m", "config.json", opts);
  EXPECT_EQ(miss.status, HUBCACHE_ERR_NOT_CACHED);
  EXPECT_NE(miss.message.find("'config.json' of model 'org/m'"), std::string::npos) << miss.message;
  EXPECT_NE(miss.message.find("hubcache download"), std::string::npos) << miss.message;
}

TEST_F(CApi, EveryFailureHasItsStatusAndAMessageNamingWhatFailed) {
  server.add_file("org/gated", "a.txt", "a");
  server.set_gated("org/gated");
  auto expect = [&](const char* repo, const char* file, hubcache_status want, const std::string& needle) {
    auto r = fetch(repo, file, opts);
    EXPECT_EQ(r.status, want) << repo << " " << file << ": " << r.message;
    EXPECT_NE(r.message.find(needle), std::string::npos) << r.message;
    EXPECT_EQ(r.path, "");
  };
  expect("../evil", "config.json", HUBCACHE_ERR_INVALID_ARGUMENT, "../evil");
  expect("org/m", "../../etc/passwd", HUBCACHE_ERR_INVALID_ARGUMENT, "../../etc/passwd");
  expect("org/nope", "config.json", HUBCACHE_ERR_REPO_NOT_FOUND, "org/nope");
  expect("org/gated", "a.txt", HUBCACHE_ERR_GATED, "org/gated");
  expect("org/m", "nope.bin", HUBCACHE_ERR_ENTRY_NOT_FOUND, "nope.bin");
  {
    // Recorded as missing upstream: lookup says so, offline.
    hubcache_lookup_status status = HUBCACHE_LOOKUP_UNKNOWN;
    ASSERT_EQ(hubcache_lookup("org/m", "nope.bin", opts, &status, nullptr, nullptr, nullptr), HUBCACHE_OK);
    EXPECT_EQ(status, HUBCACHE_LOOKUP_MISSING_UPSTREAM);
  }
  ASSERT_EQ(hubcache_options_set_revision(opts, "no-such-branch"), HUBCACHE_OK);
  expect("org/m", "config.json", HUBCACHE_ERR_REVISION_NOT_FOUND, "no-such-branch");
  ASSERT_EQ(hubcache_options_set_revision(opts, nullptr), HUBCACHE_OK);

  FaultServer::Faults f;
  f.wrong_bytes = true;
  server.set_faults(f);
  expect("org/m", "tokenizer.json", HUBCACHE_ERR_INTEGRITY, "tokenizer.json");
  EXPECT_FALSE(cached("org/m", "tokenizer.json", opts)) << "corrupt bytes never enter the cache";

  f = {};
  f.fail_count = 1000;
  f.fail_status = 503;
  server.set_faults(f);
  expect("org/m", "tokenizer.json", HUBCACHE_ERR_NETWORK, "503");
  f.fail_status = 400;
  server.set_faults(f);
  expect("org/m", "tokenizer.json", HUBCACHE_ERR_HTTP, "400");
  server.set_faults({});

  // A file system error: the cache dir is under a regular file.
  write_file(dir / "plain", "x");
  ASSERT_EQ(hubcache_options_set_cache_dir(opts, (dir / "plain/cache").c_str()), HUBCACHE_OK);
  expect("org/m", "config.json", HUBCACHE_ERR_IO, "plain/cache");
  // A branch whose commit the cache does not know has no path yet.
  ASSERT_EQ(hubcache_options_set_cache_dir(opts, (dir / "empty").c_str()), HUBCACHE_OK);
  auto p = path_of("org/m", "config.json", opts);
  EXPECT_EQ(p.status, HUBCACHE_ERR_NOT_CACHED);
  EXPECT_NE(p.message.find("refs/main"), std::string::npos) << p.message;
  char* snap = nullptr;
  EXPECT_EQ(hubcache_snapshot_path("org/m", opts, &snap, nullptr), HUBCACHE_ERR_NOT_CACHED);
  EXPECT_EQ(snap, nullptr);
}

TEST_F(CApi, FlatLayoutUsesRepoSlashFileAndKeepsWhatIsThere) {
  ASSERT_EQ(hubcache_options_set_layout(opts, HUBCACHE_LAYOUT_FLAT), HUBCACHE_OK);
  ASSERT_EQ(hubcache_options_set_cache_dir(opts, (dir / "flat").c_str()), HUBCACHE_OK);
  // Pre-populated by an application: used as is, no request.
  write_file(dir / "flat/org/m/onnx/model.onnx", "prepopulated");
  EXPECT_TRUE(cached("org/m", "onnx/model.onnx", opts));
  auto r = fetch("org/m", "onnx/model.onnx", opts);
  ASSERT_EQ(r.status, HUBCACHE_OK) << r.message;
  EXPECT_EQ(r.path, (dir / "flat/org/m/onnx/model.onnx").string());
  EXPECT_EQ(read_file(r.path), "prepopulated");
  EXPECT_TRUE(server.log().empty());
  // A miss downloads into the same layout.
  EXPECT_EQ(path_of("org/m", "config.json", opts).path, (dir / "flat/org/m/config.json").string());
  r = fetch("org/m", "config.json", opts);
  ASSERT_EQ(r.status, HUBCACHE_OK) << r.message;
  EXPECT_EQ(r.path, (dir / "flat/org/m/config.json").string());
  EXPECT_EQ(read_file(r.path), "{\"model_type\": \"bert\"}\n");
}

// ---- whole repos -----------------------------------------------------------------------

TEST_F(CApi, SnapshotWithPatternsDryRunPlanAndLocalDir) {
  hubcache_snapshot_options* so = hubcache_snapshot_options_new();
  ASSERT_EQ(hubcache_snapshot_options_add_allow_pattern(so, "*.json"), HUBCACHE_OK);
  ASSERT_EQ(hubcache_snapshot_options_add_ignore_pattern(so, "tokenizer*"), HUBCACHE_OK);
  ASSERT_EQ(hubcache_snapshot_options_set_max_workers(so, 2), HUBCACHE_OK);
  ASSERT_EQ(hubcache_snapshot_options_set_dry_run(so, 1), HUBCACHE_OK);
  int plans = 0;
  ASSERT_EQ(hubcache_snapshot_options_set_on_plan(
                so,
                [](const hubcache_snapshot_result* plan, void* user) {
                  ++*static_cast<int*>(user);
                  EXPECT_EQ(hubcache_snapshot_result_file_count(plan), 1u);
                },
                &plans),
            HUBCACHE_OK);

  hubcache_snapshot_result* result = nullptr;
  hubcache_error* error = nullptr;
  hubcache_status s = HUBCACHE_OK;
  on_own_thread([&] { s = hubcache_snapshot("org/m", opts, so, &result, &error); });
  ASSERT_EQ(s, HUBCACHE_OK) << hubcache_error_message(error);
  EXPECT_EQ(plans, 1);
  ASSERT_EQ(hubcache_snapshot_result_file_count(result), 1u);
  EXPECT_STREQ(hubcache_snapshot_result_file_path(result, 0), "config.json");
  EXPECT_EQ(hubcache_snapshot_result_file_size(result, 0), 23u);
  EXPECT_EQ(hubcache_snapshot_result_file_will_download(result, 0), 1);
  EXPECT_EQ(hubcache_snapshot_result_file_cached(result, 0), 0);
  EXPECT_EQ(hubcache_snapshot_result_file_downloaded(result, 0), 0) << "a plan moves nothing";
  EXPECT_EQ(hubcache_snapshot_result_file_path(result, 1), nullptr) << "out of range";
  EXPECT_STREQ(hubcache_snapshot_result_commit(result), commit.c_str());
  hubcache_snapshot_result_free(result);
  EXPECT_FALSE(fs::exists(pointer("config.json"))) << "a dry run writes nothing";

  ASSERT_EQ(hubcache_snapshot_options_set_dry_run(so, 0), HUBCACHE_OK);
  on_own_thread([&] { s = hubcache_snapshot("org/m", opts, so, &result, nullptr); });
  ASSERT_EQ(s, HUBCACHE_OK);
  EXPECT_EQ(std::string(hubcache_snapshot_result_path(result)),
            (dir / "cache/models--org--m/snapshots" / commit).string());
  EXPECT_EQ(hubcache_snapshot_result_file_count(result), 1u);
  EXPECT_EQ(hubcache_snapshot_result_file_downloaded(result, 0), 1);
  EXPECT_TRUE(fs::is_regular_file(pointer("config.json")));
  EXPECT_FALSE(fs::exists(pointer("tokenizer.json")));
  hubcache_snapshot_result_free(result);
  char* snap = nullptr;
  ASSERT_EQ(hubcache_snapshot_path("org/m", opts, &snap, nullptr), HUBCACHE_OK);
  EXPECT_EQ(std::string(snap), (dir / "cache/models--org--m/snapshots" / commit).string());
  hubcache_free(snap);

  // Into a local folder, the whole repo (no patterns: a fresh options handle).
  hubcache_snapshot_options* local = hubcache_snapshot_options_new();
  ASSERT_EQ(hubcache_snapshot_options_set_local_dir(local, (dir / "local").c_str()), HUBCACHE_OK);
  on_own_thread([&] { s = hubcache_snapshot("org/m", opts, local, &result, nullptr); });
  ASSERT_EQ(s, HUBCACHE_OK);
  EXPECT_EQ(std::string(hubcache_snapshot_result_path(result)), (dir / "local").string());
  EXPECT_EQ(hubcache_snapshot_result_file_count(result), 3u);
  EXPECT_EQ(read_file(dir / "local/onnx/model.onnx"), big);
  EXPECT_FALSE(fs::is_symlink(dir / "local/onnx/model.onnx"));
  hubcache_snapshot_result_free(result);
  hubcache_snapshot_options_free(local);
  hubcache_snapshot_options_free(so);
}

// ---- threads ---------------------------------------------------------------------------

TEST_F(CApi, CancelFromAnotherThreadStopsTheDownloadAndAReRunResumesIt) {
  FaultServer::Faults f;
  f.trickle_bps = 200 * 1000;  // 10 s for the whole file: the cancel comes long before
  server.set_faults(f);
  hubcache_cancel* cancel = hubcache_cancel_new();
  ASSERT_EQ(hubcache_options_set_cancel(opts, cancel), HUBCACHE_OK);
  struct Started {
    std::mutex mutex;
    std::condition_variable cv;
    bool yes = false;
  } started;
  ASSERT_EQ(hubcache_options_set_progress(
                opts,
                [](const hubcache_progress* e, void* user) {
                  if (hubcache_progress_downloaded(e) == 0) return;
                  auto* s = static_cast<Started*>(user);
                  std::lock_guard lock(s->mutex);
                  s->yes = true;
                  s->cv.notify_all();
                },
                &started),
            HUBCACHE_OK);

  Outcome r;
  std::thread downloader([&] { r = fetch("org/m", "onnx/model.onnx", opts); });
  {
    std::unique_lock lock(started.mutex);
    ASSERT_TRUE(started.cv.wait_for(lock, std::chrono::seconds(30), [&] { return started.yes; }));
  }
  hubcache_cancel_trigger(cancel);
  EXPECT_EQ(hubcache_cancel_is_triggered(cancel), 1);
  downloader.join();
  EXPECT_EQ(r.status, HUBCACHE_ERR_CANCELLED) << r.message;
  EXPECT_NE(r.message.find("onnx/model.onnx"), std::string::npos) << r.message;
  EXPECT_FALSE(fs::exists(pointer("onnx/model.onnx"))) << "a cancelled download is never published";
  const std::uint64_t kept = partials_progress(dir / "cache/models--org--m/blobs");
  EXPECT_GT(kept, 0u) << "the partial stays for a re-run";

  // Reset and go again at full speed: the bytes already there are not fetched again.
  server.set_faults({});
  server.clear_log();
  hubcache_cancel_reset(cancel);
  r = fetch("org/m", "onnx/model.onnx", opts);
  ASSERT_EQ(r.status, HUBCACHE_OK) << r.message;
  EXPECT_EQ(read_file(r.path), big);
  EXPECT_LE(server.body_bytes_sent(), big.size() - kept);
  hubcache_options_set_cancel(opts, nullptr);
  hubcache_cancel_free(cancel);
}

TEST_F(CApi, EightThreadsFetchingOneFileDownloadItOnce) {
  std::vector<Outcome> results(8);
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back([&r, this] { r = fetch("org/m", "onnx/model.onnx", opts); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_EQ(r.status, HUBCACHE_OK) << r.message;
    EXPECT_EQ(r.path, pointer("onnx/model.onnx").string());
  }
  EXPECT_EQ(read_file(pointer("onnx/model.onnx")), big);
  EXPECT_EQ(server.count("GET", "", "cdn"), 1u) << "one download; the other threads waited for it";
}

// ---- no exception crosses the boundary ---------------------------------------------------

// Fails the n-th allocation of one call, for every n until the call needs fewer: every
// outcome is a status (success, or a failure with its error object), never an exception
// (which, leaving an extern "C" noexcept function, would terminate this process).
// `call` makes the C call only and keeps its outputs; `after` checks and frees them, once
// no allocation can fail any more (the test framework allocates too).
struct Outputs {
  char* path = nullptr;
  char* commit = nullptr;
  int flag = 0;
  hubcache_lookup_status lookup = HUBCACHE_LOOKUP_UNKNOWN;
  hubcache_snapshot_result* snapshot = nullptr;
  hubcache_options* options = nullptr;
  hubcache_error* error = nullptr;
};

template <class Call>
int fail_each_allocation(std::set<hubcache_status>& seen, Call&& call) {
  for (long n = 0; n < 100000; ++n) {
    Outputs out;
    fail_allocation_after(n);
    const hubcache_status s = call(out);
    const bool failed = allocation_failure_happened();
    seen.insert(s);
    if (s == HUBCACHE_OK) {
      EXPECT_EQ(out.error, nullptr);
    } else {
      EXPECT_NE(out.error, nullptr) << "status " << s;
      EXPECT_EQ(hubcache_error_code(out.error), s);
      EXPECT_NE(std::string(hubcache_error_message(out.error)), "");
      EXPECT_EQ(out.path, nullptr);
      EXPECT_EQ(out.commit, nullptr);
      EXPECT_EQ(out.snapshot, nullptr);
    }
    hubcache_free(out.path);
    hubcache_free(out.commit);
    hubcache_snapshot_result_free(out.snapshot);
    hubcache_options_free(out.options);
    hubcache_error_free(out.error);
    if (!failed) {
      EXPECT_EQ(s, HUBCACHE_OK) << "with enough memory the call succeeds";
      return static_cast<int>(n);
    }
  }
  ADD_FAILURE() << "the call never ran out of allocations to fail";
  return -1;
}

TEST_F(CApi, OutOfMemoryNeverEscapesAsAnException) {
  ASSERT_EQ(fetch("org/m", "onnx/model.onnx", opts).status, HUBCACHE_OK);
  Options at_commit;
  hubcache_options_set_cache_dir(at_commit, (dir / "cache").c_str());
  hubcache_options_set_endpoint(at_commit, "http://127.0.0.1:9");
  hubcache_options_set_revision(at_commit, commit.c_str());
  Options offline;
  hubcache_options_set_cache_dir(offline, (dir / "cache").c_str());
  hubcache_options_set_offline(offline, 1);
  hubcache_snapshot_options* so = hubcache_snapshot_options_new();
  hubcache_snapshot_options_add_allow_pattern(so, "onnx/*");

  std::set<hubcache_status> seen;
  const int n = fail_each_allocation(
      seen, [&](Outputs& o) { return hubcache_fetch("org/m", "onnx/model.onnx", offline, &o.path, &o.error); });
  EXPECT_GT(n, 3) << "a hit allocates";
  fail_each_allocation(
      seen, [&](Outputs& o) { return hubcache_fetch("org/m", "onnx/model.onnx", at_commit, &o.path, &o.error); });
  fail_each_allocation(seen, [&](Outputs& o) {
    return hubcache_lookup("org/m", "onnx/model.onnx", offline, &o.lookup, &o.path, &o.commit, &o.error);
  });
  fail_each_allocation(
      seen, [&](Outputs& o) { return hubcache_is_cached("org/m", "onnx/model.onnx", offline, &o.flag, &o.error); });
  fail_each_allocation(seen,
                       [&](Outputs& o) { return hubcache_path("org/m", "config.json", offline, &o.path, &o.error); });
  fail_each_allocation(seen, [&](Outputs& o) { return hubcache_cache_root(offline, &o.path, &o.error); });
  fail_each_allocation(seen,
                       [&](Outputs& o) { return hubcache_snapshot("org/m", offline, so, &o.snapshot, &o.error); });
  // hubcache_options_new is NULL when out of memory; setters fail with a status only.
  for (long k = 0; k < 1000; ++k) {
    fail_allocation_after(k);
    hubcache_options* o = hubcache_options_new();
    const hubcache_status s =
        o ? hubcache_options_set_token(o, "a token long enough to need the heap") : HUBCACHE_ERR_INTERNAL;
    const bool failed = allocation_failure_happened();
    hubcache_options_free(o);
    if (!failed) {
      EXPECT_EQ(s, HUBCACHE_OK);
      break;
    }
    EXPECT_EQ(s, HUBCACHE_ERR_INTERNAL);
  }
  hubcache_snapshot_options_free(so);
  EXPECT_TRUE(seen.count(HUBCACHE_ERR_INTERNAL)) << "out of memory is HUBCACHE_ERR_INTERNAL";
}

// ---- the C example, linked against libhubcache.so ------------------------------------------

TEST(CExample, FetchModelCDownloadsThenServesFromTheCacheOffline) {
  TempDir dir;
  const std::string onnx = test_bytes(3 * 1000 * 1000, 11);
  write_file(dir / "model/onnx/model.onnx", onnx);
  write_file(dir / "model/config.json", "{}\n");
  auto r = run_cli(
      {"import", (dir / "model").string(), "--repo", "org/tiny-onnx", "--cache-dir", (dir / "served").string(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string commit = last_line(r.out);
  ServeProcess server(dir / "served");

  const std::string example = std::string(HUBCACHE_BUILD_DIR) + "/fetch_model_c";
  ASSERT_TRUE(fs::exists(example));
  Env env = {{"HF_ENDPOINT", server.url()}, {"HF_HUB_CACHE", (dir / "app-cache").string()}};

  // Disk full while the blob is written: exit 10, nothing in the cache.
  r = run({example, "org/tiny-onnx", "onnx/model.onnx"}, with_fs_faults(env, {{"WRITE", "ENOSPC:100000@/blobs/"}}));
  EXPECT_EQ(r.exit_code, HUBCACHE_ERR_DISK_FULL) << r.err;
  EXPECT_NE(r.err.find("error: "), std::string::npos) << r.err;

  r = run({example, "org/tiny-onnx", "onnx/model.onnx"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path expected = dir / "app-cache/models--org--tiny-onnx/snapshots" / commit / "onnx/model.onnx";
  EXPECT_EQ(r.out, expected.string() + "\n" + std::to_string(onnx.size()) + " bytes\n");
  EXPECT_NE(r.err.find("not cached yet"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("100%"), std::string::npos) << "progress reaches 100%: " << r.err;
  EXPECT_EQ(fs::read_symlink(expected).string(), "../../../blobs/" + hubcache::util::sha256_hex(onnx));

  // Offline, with the server gone: the same answer from the cache.
  ASSERT_EQ(server.stop(SIGTERM), 0);
  env["HF_HUB_OFFLINE"] = "1";
  r = run({example, "org/tiny-onnx", "onnx/model.onnx"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_line(r.out), std::to_string(onnx.size()) + " bytes");
  EXPECT_NE(r.err.find("cached: "), std::string::npos) << r.err;

  // A file the cache does not have, offline: exit 3 with a message naming it.
  r = run({example, "org/tiny-onnx", "onnx/model_fp16.onnx"}, env);
  EXPECT_EQ(r.exit_code, HUBCACHE_ERR_NOT_CACHED) << r.err;
  EXPECT_NE(r.err.find("onnx/model_fp16.onnx"), std::string::npos) << r.err;
}

}  // namespace

// The process's own environment must not steer the in-process calls: Settings are read
// once, on first use, so the variables are set before any test runs.
int main(int argc, char** argv) {
  static TempDir home;
  for (const char* name :
       {"HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH",
        "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_DISABLE_SYMLINKS", "XDG_CACHE_HOME", "http_proxy",
        "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"})
    ::unsetenv(name);
  ::setenv("HF_HOME", home.path().c_str(), 1);
  ::setenv("HUBCACHE_RETRY_BASE_MS", "10", 1);
  ::setenv("HUBCACHE_MAX_RETRIES", "1", 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
