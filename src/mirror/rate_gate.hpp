// One gate in front of the upstream Hub for every client of the mirror: when the Hub
// answers 429 (or 503) with Retry-After or RateLimit, no request goes upstream until
// that time has passed. Clients asking meanwhile are answered from the cache, or
// told when to come back; they never turn one rate limit into a storm of retries.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/client.hpp"

namespace hubcache::mirror {

class RateGate {
 public:
  using Clock = std::chrono::steady_clock;

  // Looks at an upstream answer. A 429, or a 503 that says when to retry, closes the
  // gate until then: Retry-After (delta-seconds or an HTTP-date), else the RateLimit
  // header's t=, else (429 only) one second. At most kMaxClosed. Returns whether it closed.
  bool observe(long status, const http::Headers& headers, Clock::time_point now = Clock::now());

  // What a client asking while the gate is closed is told: the upstream's status and
  // its rate-limit headers, with Retry-After counting down. nullopt when open.
  struct Closed {
    long status = 429;
    std::chrono::seconds retry_after{1};
    std::vector<std::pair<std::string, std::string>> headers;  // Retry-After, RateLimit, RateLimit-Policy
  };
  std::optional<Closed> closed(Clock::time_point now = Clock::now()) const;

  static constexpr std::chrono::seconds kMaxClosed{600};

 private:
  mutable std::mutex mutex_;
  Clock::time_point until_{};
  long status_ = 429;
  std::string ratelimit_, policy_;
};

}  // namespace hubcache::mirror
