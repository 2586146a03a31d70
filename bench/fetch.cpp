// Warm hits through the public API: what an application pays per call once a file
// is in the cache, through libhubcache.so, the C++ API and the C API (hubcache.h) side by
// side. Run by bench/run.sh against a cache that hubcache filled:
//
//   bench_fetch --cache-dir D --repo org/name --file path/in/repo --commit 40HEX [benchmark flags]
//
// The endpoint is a closed local port, so a call that touched the network would fail
// or fall back after a refused connection and show up as a slow outlier, not pass quietly.
#include <benchmark/benchmark.h>
#include <hubcache/hubcache.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <hubcache/hubcache.hpp>
#include <string>
#include <vector>

namespace {

struct Setup {
  std::string cache_dir, repo, file, commit;
} setup;

hubcache::Options base_options() {
  hubcache::Options o;
  o.cache_dir = setup.cache_dir;
  o.endpoint = "http://127.0.0.1:1";
  o.offline = false;
  return o;
}

// The hit the target is about: a file at a commit, no request at all.
void BM_fetch_commit(benchmark::State& state) {
  auto o = base_options();
  o.revision = setup.commit;
  for (auto _ : state) benchmark::DoNotOptimize(hubcache::fetch(setup.repo, setup.file, o));
}
BENCHMARK(BM_fetch_commit);

// The same hit through the C API, as an application in C or another language makes it:
// the options handle is set up once, and each call returns a malloc'd copy of the path
// that the caller frees.
void BM_capi_fetch_commit(benchmark::State& state) {
  hubcache_options* o = hubcache_options_new();
  hubcache_options_set_cache_dir(o, setup.cache_dir.c_str());
  hubcache_options_set_endpoint(o, "http://127.0.0.1:1");
  hubcache_options_set_offline(o, 0);
  hubcache_options_set_revision(o, setup.commit.c_str());
  for (auto _ : state) {
    char* path = nullptr;
    if (hubcache_fetch(setup.repo.c_str(), setup.file.c_str(), o, &path, nullptr) != HUBCACHE_OK) {
      state.SkipWithError("hubcache_fetch failed");
      break;
    }
    benchmark::DoNotOptimize(path);
    hubcache_free(path);
  }
  hubcache_options_free(o);
}
BENCHMARK(BM_capi_fetch_commit);

// A branch, offline (HF_HUB_OFFLINE=1): refs/main is read, then the snapshot entry.
void BM_fetch_branch_offline(benchmark::State& state) {
  auto o = base_options();
  o.offline = true;
  for (auto _ : state) benchmark::DoNotOptimize(hubcache::fetch(setup.repo, setup.file, o));
}
BENCHMARK(BM_fetch_branch_offline);

// A branch online with max_age_seconds: a recently confirmed ref is trusted, no request.
void BM_fetch_branch_max_age(benchmark::State& state) {
  auto o = base_options();
  o.max_age_seconds = 10LL * 365 * 24 * 3600;
  for (auto _ : state) benchmark::DoNotOptimize(hubcache::fetch(setup.repo, setup.file, o));
}
BENCHMARK(BM_fetch_branch_max_age);

// The offline lookups that never download.
void BM_lookup_branch(benchmark::State& state) {
  auto o = base_options();
  for (auto _ : state) benchmark::DoNotOptimize(hubcache::lookup(setup.repo, setup.file, o));
}
BENCHMARK(BM_lookup_branch);

void BM_is_cached_commit(benchmark::State& state) {
  auto o = base_options();
  o.revision = setup.commit;
  for (auto _ : state) benchmark::DoNotOptimize(hubcache::is_cached(setup.repo, setup.file, o));
}
BENCHMARK(BM_is_cached_commit);

int usage() {
  std::fprintf(stderr,
               "usage: bench_fetch --cache-dir D --repo ORG/NAME --file PATH --commit 40HEX [benchmark flags]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Take our flags out of argv; the rest goes to Google Benchmark.
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    auto take = [&](const char* flag, std::string& into) {
      if (std::strcmp(argv[i], flag) != 0 || i + 1 >= argc) return false;
      into = argv[++i];
      return true;
    };
    if (!take("--cache-dir", setup.cache_dir) && !take("--repo", setup.repo) && !take("--file", setup.file) &&
        !take("--commit", setup.commit))
      rest.push_back(argv[i]);
  }
  if (setup.cache_dir.empty() || setup.repo.empty() || setup.file.empty() || setup.commit.size() != 40) return usage();

  // Every benchmark must measure a hit: check each call returns the cached file first.
  try {
    auto o = base_options();
    o.revision = setup.commit;
    const auto at_commit = hubcache::fetch(setup.repo, setup.file, o);
    o = base_options();
    o.offline = true;
    const auto at_branch = hubcache::fetch(setup.repo, setup.file, o);
    char* c_path = nullptr;
    hubcache_options* c_options = hubcache_options_new();
    hubcache_options_set_cache_dir(c_options, setup.cache_dir.c_str());
    hubcache_options_set_offline(c_options, 1);
    hubcache_options_set_revision(c_options, setup.commit.c_str());
    const bool c_hit =
        hubcache_fetch(setup.repo.c_str(), setup.file.c_str(), c_options, &c_path, nullptr) == HUBCACHE_OK &&
        at_commit == c_path;
    hubcache_free(c_path);
    hubcache_options_free(c_options);
    if (!std::filesystem::is_regular_file(at_commit) || at_commit != at_branch ||
        !hubcache::is_cached(setup.repo, setup.file, o) || !c_hit) {
      std::fprintf(stderr, "bench_fetch: '%s' of '%s' is not cached at %s (and refs/main) in %s\n", setup.file.c_str(),
                   setup.repo.c_str(), setup.commit.c_str(), setup.cache_dir.c_str());
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fetch: %s\n", e.what());
    return 1;
  }

  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
