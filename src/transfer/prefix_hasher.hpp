// Hashes a download while it arrives, on its own thread: the contiguous prefix of
// the temp file that is complete is read back (from the page cache) and fed to
// the hasher as it grows, so verifying costs no second pass after the network is
// done. The same thread asks the kernel to start writing back each hashed region
// (sync_file_range), so the final fsync has little left to flush. A small file
// (up to kInlineHashMax) is hashed in finish() instead: starting a thread would
// cost more than the hashing it overlaps.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "util/hash.hpp"

namespace hubcache::transfer {

inline constexpr std::uint64_t kInlineHashMax = 1u << 20;

class PrefixHasher {
 public:
  // Reads `fd` with pread (the caller keeps it open while this object lives).
  // Without `kind` nothing is hashed; regions are still written back.
  PrefixHasher(int fd, std::optional<util::HashKind> kind, std::uint64_t size);
  ~PrefixHasher();
  PrefixHasher(const PrefixHasher&) = delete;
  PrefixHasher& operator=(const PrefixHasher&) = delete;

  // Bytes [0, ready) are on disk and final. `ready` only grows between restarts.
  void advance(std::uint64_t ready);
  // The content changes from byte 0 (a server restarted the body): start over.
  void restart();
  // Waits until every byte is hashed; the lowercase hex digest ("" without a kind).
  // Throws Error(io) when the file could not be read back, Error(cancelled).
  std::string finish(const std::atomic<bool>* cancel);

 private:
  void run();
  std::string hash_inline();

  const int fd_;
  const std::optional<util::HashKind> kind_;
  const std::uint64_t size_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t ready_ = 0;
  std::uint64_t hashed_ = 0;
  bool restart_ = false;
  bool stop_ = false;
  int error_ = 0;
  std::string digest_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace hubcache::transfer
