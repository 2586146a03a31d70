// --max-size: the mirror's cache is kept under a size with the existing gc (least
// recently used revisions go first, src/admin), never deleting what this process is
// serving or fetching (InUse and the fills), nor what another process downloads (its
// lock is held).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "mirror/metrics.hpp"

namespace hubcache::mirror {

// Blobs this process is reading for a response. A Hold keeps one marked until it is destroyed.
class InUse {
 public:
  using Hold = std::shared_ptr<void>;
  Hold hold(const std::filesystem::path& blob);
  bool held(const std::filesystem::path& blob) const;

 private:
  std::shared_ptr<std::mutex> mutex_ = std::make_shared<std::mutex>();
  std::shared_ptr<std::map<std::string, int>> counts_ = std::make_shared<std::map<std::string, int>>();
};

class SpaceKeeper {
 public:
  // `keep(blob)` is true for a blob (blobs/<etag>) that must stay.
  SpaceKeeper(std::filesystem::path root, std::uint64_t max_size,
              std::function<bool(const std::filesystem::path&)> keep, Metrics& metrics);
  ~SpaceKeeper();
  SpaceKeeper(const SpaceKeeper&) = delete;
  SpaceKeeper& operator=(const SpaceKeeper&) = delete;

  // `bytes` more are in the cache: when it may have grown past the limit (or before
  // the first scan: added(0) at start-up), a gc runs on this object's thread (one at a
  // time; requests never wait for it).
  void added(std::uint64_t bytes);
  // Scans the cache and, when it is over the limit, evicts least recently used
  // revisions down to 90% of it (so that it does not run again after every file).
  // Returns the bytes freed. Runs on the caller's thread.
  std::uint64_t collect();

 private:
  void loop();
  const std::filesystem::path root_;
  const std::uint64_t max_size_;
  std::function<bool(const std::filesystem::path&)> keep_;
  Metrics& metrics_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t estimate_ = 0;  // cache size at the last scan plus what was added since
  bool scanned_ = false;
  bool wanted_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace hubcache::mirror
