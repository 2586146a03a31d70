#include "mirror/upstream.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "hub/repo_api.hpp"
#include "hubcache/settings.hpp"

namespace hubcache::mirror {

namespace {

http::Client& thread_client() {
  thread_local http::Client client;
  return client;
}

}  // namespace

Upstream::Upstream(std::string base, RateGate& gate, Metrics& metrics)
    : base_(std::move(base)), gate_(gate), metrics_(metrics) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
  origin_ = http::origin_of(base_);
  timeout_ = std::max(10.0, Settings::get().etag_timeout);
}

UpstreamReply Upstream::exchange(const std::string& method, const std::string& url,
                                 const std::optional<std::string>& token, const std::string& kind,
                                 const std::string& body, const std::string& content_type) const {
  UpstreamReply reply;
  if (auto closed = gate_.closed()) {
    reply.outcome = UpstreamReply::Outcome::gated;
    reply.gate = closed;
    metrics_.add("hubcache_upstream_requests_total", {{"kind", kind}, {"status", "held"}});
    return reply;
  }
  http::Request req;
  req.method = method;
  req.url = url;
  const Settings& s = Settings::get();
  std::string ua = std::string("hubcache/") + HUBCACHE_VERSION + " (mirror); hf_hub/compat; cpp";
  if (!s.user_agent_origin.empty()) ua += "; origin/" + s.user_agent_origin;
  req.headers = {{"User-Agent", ua}, {"Accept-Encoding", "identity"}};
  // The token only ever goes to the upstream's own origin.
  if (token && !token->empty() && http::origin_of(url) == origin_)
    req.headers.emplace_back("Authorization", "Bearer " + *token);
  if (!content_type.empty()) req.headers.emplace_back("Content-Type", content_type);
  req.body = body;
  req.connect_timeout = timeout_;
  req.read_timeout = timeout_;
  // The circuit breaker. After a request got no answer, only one request at a time goes
  // to the upstream (the probe) until one is answered; the others fail at once, as if
  // that answer had been missed again, so their callers answer from the cache or with
  // 502 right away instead of each waiting out the timeout (an upstream that hangs
  // would otherwise hold every request, and a worker thread, for `timeout_`).
  bool probe = false;
  const auto sent = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(down_mutex_);
    if (down_at_ != std::chrono::steady_clock::time_point{}) {
      if (probing_) {
        reply.outcome = down_outcome_;
        const auto ago = std::chrono::duration_cast<std::chrono::seconds>(sent - down_at_).count();
        reply.detail = down_why_ + "; no answer " + std::to_string(ago) + " s ago, not asked again until it answers";
        metrics_.add("hubcache_upstream_requests_total", {{"kind", kind}, {"status", "down"}});
        return reply;
      }
      probing_ = probe = true;
    }
    sent_.insert(sent);
  }
  for (int attempt = 0;; ++attempt) {
    try {
      http::Response r = thread_client().perform(req);
      reply.outcome = UpstreamReply::Outcome::answered;
      reply.status = r.status;
      reply.headers = std::move(r.headers);
      reply.body = std::move(r.body);
      break;
    } catch (const http::TransportError& e) {
      reply.detail = e.what();
      const bool timed_out = reply.detail.find("timed out") != std::string::npos;
      reply.outcome = timed_out ? UpstreamReply::Outcome::timed_out : UpstreamReply::Outcome::unreachable;
      if (timed_out || !e.retryable() || attempt >= 1) break;
    }
  }
  metrics_.add("hubcache_upstream_requests_total",
               {{"kind", kind}, {"status", reply.answered() ? std::to_string(reply.status) : "error"}});
  {
    std::lock_guard lock(down_mutex_);
    sent_.erase(sent_.find(sent));
    if (probe) probing_ = false;
    if (reply.answered()) {
      down_at_ = {};
      answered_at_ = std::chrono::steady_clock::now();
    } else {
      down_at_ = std::chrono::steady_clock::now();
      down_why_ = reply.detail;
      down_outcome_ = reply.outcome;
    }
  }
  if (reply.answered() && gate_.observe(reply.status, reply.headers)) {
    metrics_.add("hubcache_upstream_rate_limited_total", {});
    reply.gate = gate_.closed();
  }
  return reply;
}

void Upstream::mark_down(bool timed_out) const {
  std::lock_guard lock(down_mutex_);
  down_at_ = std::chrono::steady_clock::now();
  // Every client refused meanwhile reads this: it names no repo or file (the failed
  // transfer's own message may name a private one).
  down_why_ =
      timed_out ? "a file transfer from the upstream timed out" : "a file transfer from the upstream got no answer";
  down_outcome_ = timed_out ? UpstreamReply::Outcome::timed_out : UpstreamReply::Outcome::unreachable;
}

std::chrono::milliseconds Upstream::unanswered_for() const {
  std::lock_guard lock(down_mutex_);
  // The oldest request sent since the last answer: one sent before it may just be slow
  // (a long listing), and says nothing of the upstream now.
  auto oldest = sent_.upper_bound(answered_at_);
  if (oldest == sent_.end()) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - *oldest);
}

std::optional<std::string> Upstream::down_recently(std::chrono::seconds window) const {
  std::lock_guard lock(down_mutex_);
  if (down_at_ == std::chrono::steady_clock::time_point{} || std::chrono::steady_clock::now() - down_at_ > window)
    return std::nullopt;
  return down_why_;
}

UpstreamReply Upstream::send(const std::string& method, const std::string& path_and_query,
                             const std::optional<std::string>& token, const std::string& kind, const std::string& body,
                             const std::string& content_type) const {
  return exchange(method, base_ + path_and_query, token, kind, body, content_type);
}

UpstreamReply Upstream::get_all_pages(const std::string& path_and_query, const std::optional<std::string>& token,
                                      const std::string& kind, std::size_t max_entries) const {
  UpstreamReply first = exchange("GET", base_ + path_and_query, token, kind, "", "");
  if (!first.ok()) return first;
  auto all = nlohmann::ordered_json::parse(first.body, nullptr, false);
  if (all.is_discarded() || !all.is_array()) return first;  // not a listing: the caller reports it
  auto link = first.headers.get("Link");
  for (int pages = 1; link; ++pages) {
    auto next = hub::next_link(*link);
    if (!next) break;
    if (pages > 10000 || all.size() > max_entries) {
      first.truncated = true;
      break;
    }
    UpstreamReply page = exchange("GET", *next, token, kind, "", "");
    if (!page.ok()) return page;
    auto items = nlohmann::ordered_json::parse(page.body, nullptr, false);
    if (items.is_discarded() || !items.is_array()) {
      page.status = 502;
      page.detail = "a page of the listing is not a JSON array";
      return page;
    }
    for (auto& e : items) all.push_back(std::move(e));
    link = page.headers.get("Link");
  }
  first.body = all.dump();
  return first;
}

}  // namespace hubcache::mirror
