// Warm hits through the public API: what an application pays per call once a file
// is in the cache. Run by bench/run.sh against a cache that hubcache filled:
//
//   bench_fetch --cache-dir D --repo org/name --file path/in/repo --commit 40HEX [benchmark flags]
//
// The endpoint is a closed local port, so a call that touched the network would fail
// or fall back after a refused connection and show up as a slow outlier, not pass quietly.
#include <benchmark/benchmark.h>

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
    if (!std::filesystem::is_regular_file(at_commit) || at_commit != at_branch ||
        !hubcache::is_cached(setup.repo, setup.file, o)) {
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
