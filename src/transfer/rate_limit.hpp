// A bandwidth budget shared by every connection of every download in the process
// that asks for the same cap (Options::max_bytes_per_second, `--max-speed`).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

namespace hubcache::transfer {

class RateLimiter {
 public:
  explicit RateLimiter(std::uint64_t bytes_per_second);

  // Accounts for `n` bytes just received and returns how long the receiver should
  // wait before taking more (zero while under budget). Thread-safe. A burst of
  // about 50 ms worth of bytes passes without waiting.
  std::chrono::nanoseconds consume(std::uint64_t n);
  // How long until the bytes taken so far are paid for (zero: take more now).
  std::chrono::nanoseconds wait();

  std::uint64_t rate() const { return rate_; }

  // The process-wide limiter for `bytes_per_second` (nullptr for 0 = unlimited):
  // downloads running at the same time with the same cap share one budget.
  static std::shared_ptr<RateLimiter> shared(std::uint64_t bytes_per_second);

 private:
  std::mutex mutex_;
  const std::uint64_t rate_;
  std::chrono::steady_clock::time_point paid_until_;  // when the bytes taken so far are "paid for"
};

}  // namespace hubcache::transfer
