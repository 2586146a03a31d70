#include "mirror/rate_gate.hpp"

#include <algorithm>
#include <ctime>

#include "http/headers.hpp"

namespace hubcache::mirror {

bool RateGate::observe(long status, const http::Headers& headers, Clock::time_point now) {
  if (status != 429 && status != 503) return false;
  std::optional<std::int64_t> secs;
  if (auto ra = headers.get("Retry-After")) secs = http::parse_retry_after(*ra, std::time(nullptr));
  if (!secs)
    if (auto rl = headers.get("RateLimit")) secs = http::parse_ratelimit_reset(*rl);
  if (!secs) {
    if (status != 429) return false;  // a bare 503 is an outage, not a request to slow down
    secs = 1;
  }
  const auto wait = std::chrono::seconds(std::clamp<std::int64_t>(*secs, 1, kMaxClosed.count()));
  std::lock_guard lock(mutex_);
  const auto until = now + wait;
  if (until > until_) until_ = until;
  status_ = status;
  ratelimit_ = headers.get("RateLimit").value_or("");
  policy_ = headers.get("RateLimit-Policy").value_or("");
  return true;
}

std::optional<RateGate::Closed> RateGate::closed(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (now >= until_) return std::nullopt;
  Closed c;
  c.status = status_;
  // Rounded up: a client that waits what it is told finds the gate open.
  c.retry_after = std::chrono::ceil<std::chrono::seconds>(until_ - now);
  c.headers.emplace_back("Retry-After", std::to_string(c.retry_after.count()));
  if (!ratelimit_.empty()) c.headers.emplace_back("RateLimit", ratelimit_);
  if (!policy_.empty()) c.headers.emplace_back("RateLimit-Policy", policy_);
  return c;
}

}  // namespace hubcache::mirror
