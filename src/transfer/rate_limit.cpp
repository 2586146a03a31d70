#include "transfer/rate_limit.hpp"

#include <map>

namespace hubcache::transfer {

namespace {
constexpr auto kBurst = std::chrono::milliseconds(50);
}

RateLimiter::RateLimiter(std::uint64_t bytes_per_second)
    : rate_(bytes_per_second ? bytes_per_second : 1), paid_until_(std::chrono::steady_clock::now() - kBurst) {}

std::chrono::nanoseconds RateLimiter::consume(std::uint64_t n) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  // Idle time earns at most one burst of credit.
  if (paid_until_ < now - kBurst) paid_until_ = now - kBurst;
  paid_until_ += std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(n) * 1e9 / rate_));
  return paid_until_ > now ? std::chrono::duration_cast<std::chrono::nanoseconds>(paid_until_ - now)
                           : std::chrono::nanoseconds(0);
}

std::chrono::nanoseconds RateLimiter::wait() {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  return paid_until_ > now ? std::chrono::duration_cast<std::chrono::nanoseconds>(paid_until_ - now)
                           : std::chrono::nanoseconds(0);
}

std::shared_ptr<RateLimiter> RateLimiter::shared(std::uint64_t bytes_per_second) {
  if (!bytes_per_second) return nullptr;
  static std::mutex mutex;
  static std::map<std::uint64_t, std::weak_ptr<RateLimiter>> limiters;
  std::lock_guard lock(mutex);
  auto& slot = limiters[bytes_per_second];
  auto limiter = slot.lock();
  if (!limiter) {
    limiter = std::make_shared<RateLimiter>(bytes_per_second);
    slot = limiter;
  }
  return limiter;
}

}  // namespace hubcache::transfer
