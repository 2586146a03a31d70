#include "mirror/space.hpp"

#include <cstdio>

#include "hubcache/admin.hpp"
#include "hubcache/error.hpp"

namespace hubcache::mirror {

namespace fs = std::filesystem;

InUse::Hold InUse::hold(const fs::path& blob) {
  auto mutex = mutex_;
  auto counts = counts_;
  const std::string key = blob.lexically_normal().string();
  {
    std::lock_guard lock(*mutex);
    ++(*counts)[key];
  }
  return Hold(nullptr, [mutex, counts, key](void*) {
    std::lock_guard lock(*mutex);
    if (auto it = counts->find(key); it != counts->end() && --it->second <= 0) counts->erase(it);
  });
}

bool InUse::held(const fs::path& blob) const {
  std::lock_guard lock(*mutex_);
  return counts_->count(blob.lexically_normal().string()) > 0;
}

SpaceKeeper::SpaceKeeper(fs::path root, std::uint64_t max_size, std::function<bool(const fs::path&)> keep,
                         Metrics& metrics)
    : root_(std::move(root)), max_size_(max_size), keep_(std::move(keep)), metrics_(metrics) {
  thread_ = std::thread([this] { loop(); });
}

SpaceKeeper::~SpaceKeeper() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SpaceKeeper::added(std::uint64_t bytes) {
  {
    std::lock_guard lock(mutex_);
    estimate_ += bytes;
    if (scanned_ && estimate_ <= max_size_) return;
    wanted_ = true;
  }
  cv_.notify_all();
}

void SpaceKeeper::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || wanted_; });
    if (stopping_) return;
    wanted_ = false;
    lock.unlock();
    try {
      collect();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mirror: --max-size gc failed: %s\n", e.what());
    }
    lock.lock();
  }
}

std::uint64_t SpaceKeeper::collect() {
  admin::ScanReport report = admin::scan_cache(root_);
  const std::uint64_t size = report.size + report.incomplete_size;
  if (size <= max_size_) {
    std::lock_guard lock(mutex_);
    estimate_ = size;
    scanned_ = true;
    return 0;
  }
  admin::GcPolicy policy;
  const std::uint64_t partials = report.incomplete_size;
  const std::uint64_t target = max_size_ / 10 * 9;
  policy.max_size = target > partials ? target - partials : 0;
  policy.keep = keep_;
  admin::DeletePlan plan = admin::plan_gc(report, policy);
  const auto result = plan.execute();
  metrics_.add("hubcache_gc_runs_total", {});
  metrics_.add("hubcache_gc_freed_bytes_total", {}, static_cast<double>(result.freed));
  std::fprintf(stderr,
               "mirror: the cache held %llu bytes, over --max-size %llu: gc freed %llu bytes (%zu repos, %zu "
               "revisions)\n",
               static_cast<unsigned long long>(size), static_cast<unsigned long long>(max_size_),
               static_cast<unsigned long long>(result.freed), plan.nb_repos, plan.nb_revisions);
  std::lock_guard lock(mutex_);
  estimate_ = size > result.freed ? size - result.freed : 0;
  scanned_ = true;
  return result.freed;
}

}  // namespace hubcache::mirror
