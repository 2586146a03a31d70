// The mirror's side of the upstream Hub (huggingface.co, or another mirror): single
// exchanges with the raw answer kept (so the Hub's own errors reach clients
// unchanged), the token sent only to the upstream's origin, every request through
// the shared rate gate, and counters in the metrics.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "http/client.hpp"
#include "mirror/metrics.hpp"
#include "mirror/rate_gate.hpp"

namespace hubcache::mirror {

struct UpstreamReply {
  enum class Outcome {
    answered,     // status, headers and body below are the upstream's
    unreachable,  // no answer: connection refused or reset, DNS, TLS (detail says which)
    timed_out,    // no answer in time
    gated,        // not sent: the rate gate is closed (gate says until when)
  };
  Outcome outcome = Outcome::answered;
  long status = 0;
  http::Headers headers;
  std::string body;
  std::string detail;
  std::optional<RateGate::Closed> gate;
  // get_all_pages stopped at its limits with pages left: the body is not the whole listing.
  bool truncated = false;

  bool answered() const { return outcome == Outcome::answered; }
  bool ok() const { return answered() && status >= 200 && status < 300; }
  bool redirect() const { return answered() && status >= 300 && status < 400; }
  // No answer at all (the upstream is down, slow, or we hold back for it).
  bool unavailable() const { return !answered(); }
  // An answer that says the upstream is in trouble (5xx, 429): cached data is better.
  bool upstream_error() const { return answered() && (status >= 500 || status == 429 || status == 408); }
};

class Upstream {
 public:
  // `base`: the upstream's base URL ("https://huggingface.co", "http://mirror:8080").
  Upstream(std::string base, RateGate& gate, Metrics& metrics);

  const std::string& base() const { return base_; }

  // One exchange with `base + path_and_query`. Redirects are not followed (a renamed
  // repo's relative 307 goes back to the client as it is). Authorization carries
  // `token` when set. A transport error is retried once (a kept-alive connection the
  // server closed); HTTP statuses are not retried here: clients retry, and the gate
  // stops everyone at once. `kind` labels the metrics ("resolve", "api", "access").
  UpstreamReply send(const std::string& method, const std::string& path_and_query,
                     const std::optional<std::string>& token, const std::string& kind, const std::string& body = "",
                     const std::string& content_type = "") const;

  // GET of a JSON array listing (tree), with every `Link: <...>; rel="next"` page
  // appended: one reply whose body is the whole array, or the first page's failure.
  // Next pages on another origin are fetched without the token.
  UpstreamReply get_all_pages(const std::string& path_and_query, const std::optional<std::string>& token,
                              const std::string& kind, std::size_t max_entries = 2'000'000) const;

  // Seconds allowed for an upstream answer (HF_HUB_ETAG_TIMEOUT, at least 10).
  double timeout() const { return timeout_; }

  // Why the upstream gave no answer at all (refused, reset, timed out) within the last
  // `window`, if it did and nothing answered since: a new file transfer then fails at
  // once instead of retrying for half a minute per client. Any answer clears it.
  std::optional<std::string> down_recently(std::chrono::seconds window) const;
  void mark_down(bool timed_out) const;

  // How long the upstream has left a request unanswered with no other answer since that
  // request was sent (0 when none waits): a hanging (or crawling) upstream.
  std::chrono::milliseconds unanswered_for() const;

 private:
  UpstreamReply exchange(const std::string& method, const std::string& url, const std::optional<std::string>& token,
                         const std::string& kind, const std::string& body, const std::string& content_type) const;
  std::string base_;
  std::string origin_;
  RateGate& gate_;
  Metrics& metrics_;
  double timeout_;
  // The circuit breaker (see exchange): state of the upstream's recent answers.
  mutable std::mutex down_mutex_;
  mutable std::chrono::steady_clock::time_point down_at_{};  // last request without an answer ({}: answered since)
  mutable std::string down_why_;
  mutable UpstreamReply::Outcome down_outcome_ = UpstreamReply::Outcome::unreachable;
  mutable bool probing_ = false;                                       // a request tests an upstream that is down
  mutable std::multiset<std::chrono::steady_clock::time_point> sent_;  // requests waiting for their answer
  mutable std::chrono::steady_clock::time_point answered_at_{};        // the last answer
};

}  // namespace hubcache::mirror
