// The download engine (see engine.hpp and docs/architecture.md, "Downloads").
//
// One thread drives every connection of a download through http::Multi. The
// missing bytes are a queue of ranges; each connection takes a chunk from the
// front, writes what arrives with pwrite at its offset, and marks it done in the
// journal's interval set as it lands, so the journal (flushed a few times a second)
// always knows per-range progress. Failed or stalled ranges go back to the queue
// with a backoff, alone: the other connections keep going. At the tail an idle
// connection splits the largest range still in flight, so one slow connection
// does not hold the whole file back.
//
// The first request of a large file is a ranged GET of its first chunk. It follows
// the Hub's redirects (once per download: later chunks go straight to the final
// URL; Authorization only ever goes to the endpoint's own origin) and shows
// whether the server honours ranges: a 206 with the right Content-Range opens the
// other connections; a 200 means the body comes whole, and that one stream is
// kept. A 200 to any later Range request (the object changed, so If-Range
// refused) restarts the file from zero on that stream.
#include "transfer/engine.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "http/headers.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"
#include "transfer/rate_limit.hpp"
#include "util/fs.hpp"

namespace hubcache::transfer {

namespace fs = std::filesystem;

bool still_owned(int fd, const fs::path& temp) {
  struct stat a {
  }, b{};
  if (::fstat(fd, &a) != 0 || ::stat(temp.c_str(), &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What a kill -9 can cost: the bytes that arrived since the last journal write
// are fetched again. A write is one small JSON file and a rename, so 20 a second
// cost little, and a killed run loses at most about 50 ms of transfer per range.
constexpr auto kJournalEvery = 50ms;
constexpr auto kReportEvery = 50ms;
constexpr int kMaxConnections = 64;

Error errno_error(int err, const std::string& what) {
  try {
    util::throw_errno(err, what);
  } catch (const Error& e) {
    return e;
  }
  return Error(ErrorCode::io, what);
}

struct Todo {
  std::uint64_t first, end;
  int failures;
  Clock::time_point not_before;
};

// Transfers running in the whole process: a whole-repo download runs several
// files at once, and each adds connections only while the process is under
// kProcessConnections (or its own --connections, if larger).
std::atomic<int> g_transfers{0};
constexpr int kProcessConnections = 16;

struct Part {
  struct Counted {
    Counted() { ++g_transfers; }
    ~Counted() { --g_transfers; }
    Counted(const Counted&) = delete;
    Counted& operator=(const Counted&) = delete;
  } counted;
  http::Multi::Id id = 0;
  std::uint64_t first = 0, pos = 0, end = 0;  // asked [first, end); written up to pos
  bool ranged = false;                        // sent a Range header
  bool checked = false;                       // status and Content-Range were checked
  bool reached_end = false;                   // stopped on purpose at `end`
  bool paused = false;                        // waiting for the bandwidth budget
  std::string url;
  bool auth = true;        // may carry Authorization: no hop of its chain left the endpoint's origin
  unsigned url_epoch = 0;  // which resolution of the download URL it follows
  int hops = 0;
  int failures = 0;  // failures in a row, without progress, of the range it serves
  unsigned generation = 0;
  Clock::duration last_activity{};  // since the engine started
  std::string problem;              // why the body was refused (a protocol mismatch)
};

class Engine {
 public:
  Engine(http::Multi& multi, FetchJob& job)
      : multi_(multi),
        job_(job),
        ctx_(job.ctx),
        settings_(Settings::get()),
        size_(job.meta.size),
        done_(job.journal.done),
        resolved_url_(job.meta.location),
        resolved_auth_(hub::on_endpoint(job.ctx, job.meta.location)),
        validator_(job.journal.validator),
        limiter_(RateLimiter::shared(job.options.max_bytes_per_second)),
        stall_timeout_(std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(std::max(1.0, ctx_.download_timeout)))) {
    slots_ = size_ >= kParallelMinSize ? std::clamp(job.options.connections, 1, kMaxConnections) : 1;
    multi_mode_ = slots_ > 1;
    const auto now = Clock::now();
    if (size_ == 0) todo_.push_back({0, 0, 0, now});  // one GET, to see the (empty) answer
    for (const auto& [a, b] : done_.gaps(size_)) todo_.push_back({a, b, 0, now});
    const std::uint64_t initial = size_ / (static_cast<std::uint64_t>(slots_) * 4);
    initial_chunk_ = std::clamp<std::uint64_t>(initial, kMinChunk, 16u << 20);
  }

  ~Engine() { abort_all(); }

  void run() {
    try {
      loop();
    } catch (const Error& e) {
      abort_all();
      if (e.code() == ErrorCode::network || e.code() == ErrorCode::cancelled ||
          dynamic_cast<const ResumableError*>(&e)) {
        try {
          flush(true);
        } catch (const LostClaim&) {
        }
      }
      throw;
    }
  }

 private:
  enum class Ranges { unknown, honoured, ignored };

  Clock::duration active_now() const { return Clock::now() - started_; }

  void loop() {
    job_.hasher.advance(done_.prefix_end());
    if (job_.watch) job_.watch->progress(done_);
    report(true);
    for (;;) {
      if (cancelled())
        throw Error(ErrorCode::cancelled, "Download of '" + ctx_.file + "' cancelled; a re-run resumes it.");
      schedule();
      if (parts_.empty()) {
        if (todo_.empty()) break;
        wait_for_backoff();
        continue;
      }
      auto results = multi_.poll(poll_timeout_ms());
      resume_paused();
      if (fatal_) throw *fatal_;
      if (object_changed_) restart_everything();
      drop_stale_parts();
      for (auto& r : results) finished(r);
      check_stalls();
      job_.hasher.advance(done_.prefix_end());
      if (job_.watch) job_.watch->progress(done_);
      report(false);
      flush(false);
    }
    if (done_.total() != size_)
      throw Error(ErrorCode::integrity, "Consistency check failed for '" + ctx_.file + "': it should be " +
                                            std::to_string(size_) + " bytes but " + std::to_string(done_.total()) +
                                            " arrived. Nothing was stored; retry the download.");
    report(true);  // no last journal write: the file is about to be published
  }

  bool cancelled() const { return job_.options.cancel && job_.options.cancel->load(); }

  // ---- scheduling ------------------------------------------------------------------
  std::size_t allowed() const { return multi_mode_ && ranges_ == Ranges::honoured ? slots_ : 1; }

  void schedule() {
    const auto now = Clock::now();
    const int budget = std::max(kProcessConnections, static_cast<int>(slots_));
    while (parts_.size() < allowed() && (parts_.empty() || g_transfers.load() < budget)) {
      if (start_wanted(now)) continue;
      auto it = std::find_if(todo_.begin(), todo_.end(), [&](const Todo& t) { return t.not_before <= now; });
      if (it == todo_.end()) {
        if (todo_.empty() && multi_mode_ && ranges_ == Ranges::honoured && split()) continue;
        return;
      }
      Todo t = *it;
      std::uint64_t end = t.end;
      if (multi_mode_ && ranges_ != Ranges::ignored) end = std::min(t.end, t.first + chunk_size());
      if (end < t.end) {
        it->first = end;
      } else {
        todo_.erase(it);
      }
      start_part(t.first, end, t.failures, resolved_url_, resolved_auth_, url_epoch_, 0);
    }
  }

  // Readers of a streamed download wait at the watch's wanted() offsets: a free
  // connection starts at the first one that is neither on disk nor about to arrive,
  // taking it out of the queue, or off the end of a range in flight that would reach
  // it late, more than a chunk ahead (that range then stops there, as in split()).
  bool start_wanted(Clock::time_point now) {
    if (!job_.watch || !multi_mode_ || ranges_ != Ranges::honoured) return false;
    for (const std::uint64_t w : job_.watch->wanted()) {
      if (w >= size_ || done_.covers(w, w + 1)) continue;
      Part* carrier = nullptr;
      for (auto& [id, p] : parts_)
        if (p->generation == generation_ && p->pos <= w && w < p->end) carrier = p.get();
      if (carrier) {
        // Arriving within about one chunk's time anyway: a split would only waste the
        // bytes in flight on the carrier's connection when it stops.
        if (w - carrier->pos < std::max(4 * kMinChunk, chunk_size())) continue;
        const std::uint64_t end = carrier->end;
        carrier->end = w;
        start_part(w, end, 0, resolved_url_, resolved_auth_, url_epoch_, 0);
        return true;
      }
      auto it = std::find_if(todo_.begin(), todo_.end(), [&](const Todo& t) { return t.first <= w && w < t.end; });
      if (it == todo_.end() || it->not_before > now) continue;
      const Todo t = *it;
      const std::uint64_t end = std::min(t.end, w + chunk_size());
      todo_.erase(it);
      push_todo(t.first, w, t.failures, t.not_before);
      push_todo(end, t.end, t.failures, t.not_before);
      start_part(w, end, t.failures, resolved_url_, resolved_auth_, url_epoch_, 0);
      return true;
    }
    return false;
  }

  // About two seconds of one connection's measured throughput, bounded, and no more
  // than an even share of what is left so the last chunks end together.
  std::uint64_t chunk_size() const {
    std::uint64_t chunk = initial_chunk_;
    const double secs = std::chrono::duration<double>(active_now()).count();
    if (secs > 0.5 && received_ > 0) {
      const double per_connection = static_cast<double>(received_) / secs / static_cast<double>(slots_);
      chunk = std::clamp<std::uint64_t>(static_cast<std::uint64_t>(per_connection * 2), kMinChunk, kMaxChunk);
    }
    std::uint64_t left = 0;
    for (const auto& t : todo_) left += t.end - t.first;
    const std::uint64_t share = (left + slots_ - 1) / slots_;
    return std::max(kMinChunk, std::min(chunk, share));
  }

  // An idle connection takes the second half of the largest range in flight.
  bool split() {
    Part* victim = nullptr;
    for (auto& [id, p] : parts_)
      if (p->generation == generation_ && (!victim || p->end - p->pos > victim->end - victim->pos)) victim = p.get();
    if (!victim || victim->end - victim->pos < 2 * kMinChunk) return false;
    const std::uint64_t mid = victim->pos + (victim->end - victim->pos) / 2;
    const std::uint64_t end = victim->end;
    victim->end = mid;
    start_part(mid, end, 0, resolved_url_, resolved_auth_, url_epoch_, 0);
    return true;
  }

  void start_part(std::uint64_t first, std::uint64_t end, int failures, const std::string& url, bool auth,
                  unsigned url_epoch, int hops) {
    auto p = std::make_unique<Part>();
    p->first = p->pos = first;
    p->end = end;
    p->failures = failures;
    p->url = url;
    p->auth = auth;
    p->url_epoch = url_epoch;
    p->hops = hops;
    p->generation = generation_;
    p->last_activity = active_now();
    // A large file's first request asks for a range even from byte 0: its answer
    // says whether the server honours ranges.
    p->ranged = first > 0 || end < size_ || (multi_mode_ && ranges_ == Ranges::unknown && size_ > 0);

    http::Request req;
    req.url = url;
    req.headers = hub::request_headers(ctx_, url, auth);  // Authorization only on the endpoint's origin
    if (p->ranged) {
      req.headers.emplace_back("Range", http::range_header(first, end < size_ ? std::optional(end - 1) : std::nullopt));
      if (!validator_.empty()) req.headers.emplace_back("If-Range", validator_);
    }
    req.connect_timeout = ctx_.download_timeout;
    req.read_timeout = 0;  // stalls are watched here, per range
    req.cancel = job_.options.cancel;
    Part* raw = p.get();
    p->id = multi_.start(req, [this, raw](long status, const http::Headers& headers, const char* data, std::size_t n) {
      try {
        return on_body(*raw, status, headers, data, n);
      } catch (const std::exception& e) {
        if (!fatal_) fatal_ = Error(ErrorCode::internal, std::string("Download engine: ") + e.what());
        return http::Flow::abort;
      }
    });
    parts_.emplace(p->id, std::move(p));
  }

  void push_todo(std::uint64_t first, std::uint64_t end, int failures, Clock::time_point not_before) {
    if (first >= end) return;
    auto it = std::find_if(todo_.begin(), todo_.end(), [&](const Todo& t) { return t.first > first; });
    todo_.insert(it, Todo{first, end, failures, not_before});
  }

  void wait_for_backoff() {
    auto next = todo_.front().not_before;
    for (const auto& t : todo_) next = std::min(next, t.not_before);
    const auto now = Clock::now();
    if (next > now) std::this_thread::sleep_for(std::min<Clock::duration>(next - now, 50ms));
  }

  // ---- bytes -----------------------------------------------------------------------
  http::Flow on_body(Part& p, long status, const http::Headers& headers, const char* data, std::size_t n) {
    using http::Flow;
    if (p.generation != generation_ || fatal_ || object_changed_) return Flow::abort;
    if (!p.checked) {
      if (!check_response(p, status, headers)) return Flow::abort;
      p.checked = true;
    }
    // Over the bandwidth budget: take nothing, the loop resumes this transfer when
    // the budget allows (its socket is not read meanwhile, so the server slows down).
    if (limiter_ && limiter_->wait().count() > 0) {
      p.paused = true;
      return Flow::pause;
    }
    std::size_t take = n;
    if (p.pos + n > p.end) {
      if (p.end == size_) {
        fatal_ = Error(ErrorCode::integrity, "The server sent more than the expected " + std::to_string(size_) +
                                                 " bytes for '" + ctx_.file + "'; nothing was stored.");
        return Flow::abort;
      }
      take = static_cast<std::size_t>(p.end - p.pos);  // a split range, or more than was asked
      p.reached_end = true;
    }
    for (std::size_t off = 0; off < take;) {
      ssize_t w = ::pwrite(job_.fd, data + off, take - off, static_cast<off_t>(p.pos + off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        fatal_ = errno_error(w < 0 ? errno : EIO, "Cannot write " + job_.temp.string());
        return Flow::abort;
      }
      off += static_cast<std::size_t>(w);
    }
    done_.add(p.pos, p.pos + take);
    p.pos += take;
    received_ += take;
    p.last_activity = active_now();
    if (limiter_) limiter_->consume(take);
    return p.reached_end ? Flow::abort : Flow::proceed;
  }

  // The first bytes of an answer: is it the range we asked for, of the object we expect?
  bool check_response(Part& p, long status, const http::Headers& headers) {
    const auto etag = headers.get("ETag");
    const bool strong = etag && http::is_strong_etag(*etag);
    if (status == 206) {
      const auto cr_text = headers.get("Content-Range");
      const auto cr = cr_text ? http::parse_content_range(*cr_text) : std::nullopt;
      if (!p.ranged || !cr || !cr->satisfied || cr->first != p.pos) {
        p.problem = "the server answered with the wrong range (" + cr_text.value_or("no Content-Range") + ")";
        return false;
      }
      if (cr->complete && *cr->complete != size_) {
        fatal_ = size_mismatch(*cr->complete);
        return false;
      }
      if (strong) {
        if (validator_.empty()) {
          validator_ = *etag;
        } else if (*etag != validator_) {
          object_changed_ = true;  // ranges of two versions must not mix
          return false;
        }
      }
      if (cr->last + 1 < p.end) {
        // Fewer bytes than asked (servers may cap a range): the rest goes back in the queue.
        push_todo(cr->last + 1, p.end, p.failures, Clock::now());
        p.end = cr->last + 1;
      }
      if (ranges_ == Ranges::unknown) ranges_ = Ranges::honoured;
      return true;
    }
    if (status == 200) {
      // A Content-Length other than the Hub's size is not trusted either way: servers
      // and proxies get it wrong. Only bytes count: more than the size is refused as
      // they arrive (on_body), fewer are asked for again, and a server that really
      // holds fewer answers that Range with 416 and its size (finished()).
      if (strong) validator_ = *etag;
      no_ranges_ = !http::accepts_byte_ranges(headers.get("Accept-Ranges").value_or(""));
      if (multi_mode_ && ranges_ == Ranges::unknown) ranges_ = Ranges::ignored;
      if (p.ranged || p.first != 0) {
        // The whole body, though we asked for a range: the server ignores ranges or
        // the object changed. Everything is rewritten from byte 0 on this stream.
        if (!done_.empty() && ++restarts_ > settings_.max_retries) {
          fatal_ = Error(ErrorCode::network, "Download of '" + ctx_.file + "' restarted from zero " +
                                                 std::to_string(restarts_ - 1) +
                                                 " times (the server keeps ignoring ranges after a broken stream).");
          return false;
        }
        if (multi_mode_) ranges_ = Ranges::ignored;
        ++generation_;
        p.generation = generation_;
        done_.clear();
        todo_.clear();
        restart_prefix();
        p.first = p.pos = 0;
        p.end = size_;
        p.ranged = false;
      }
      return true;
    }
    p.problem = "unexpected HTTP " + std::to_string(status) + " with a body";
    return false;
  }

  Error size_mismatch(std::uint64_t server_size) const {
    return Error(ErrorCode::integrity, "The server holds " + std::to_string(server_size) + " bytes for '" + ctx_.file +
                                           "' but the Hub announced " + std::to_string(size_) +
                                           ". Nothing was stored; retry the download.");
  }

  // Paused transfers go on once the bandwidth budget allows; their stall clocks
  // restart (waiting for the budget is not a stall).
  void resume_paused() {
    if (!limiter_ || limiter_->wait().count() > 0) return;
    std::vector<http::Multi::Id> ids;
    for (auto& [id, p] : parts_)
      if (p->paused) ids.push_back(id);
    for (auto id : ids) {
      auto it = parts_.find(id);
      if (it == parts_.end()) continue;
      it->second->paused = false;
      it->second->last_activity = active_now();
      multi_.resume(id);  // may deliver the held bytes right away (on_body)
    }
  }

  // How long the next poll may wait: less when paused transfers wait for the budget.
  int poll_timeout_ms() const {
    if (!limiter_) return 50;
    for (const auto& [id, p] : parts_)
      if (p->paused) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(limiter_->wait()).count();
        return static_cast<int>(std::clamp<std::int64_t>(ms + 1, 1, 50));
      }
    return 50;
  }

  // ---- ends of transfers -----------------------------------------------------------
  void finished(http::Multi::Result& r) {
    auto it = parts_.find(r.id);
    if (it == parts_.end()) return;
    std::unique_ptr<Part> p = std::move(it->second);
    parts_.erase(it);
    if (p->generation != generation_ || p->reached_end) return;
    const long status = r.response.status;
    if (r.error) {
      if (r.error->cancelled())
        throw Error(ErrorCode::cancelled, "Download of '" + ctx_.file + "' cancelled; a re-run resumes it.");
      if (!r.error->retryable() && !r.error->aborted_by_sink())
        throw Error(ErrorCode::network, "Download of '" + ctx_.file + "' failed: " + r.error->what());
      requeue(*p, p->problem.empty() ? r.error->what() : p->problem, nullptr);
      return;
    }
    if (status >= 300 && status < 400) {
      auto location = r.response.headers.get("Location");
      if (!location || p->hops >= 10)
        throw Error(ErrorCode::network, "Too many or broken redirects while downloading '" + ctx_.file + "' from " +
                                            http::origin_of(p->url) + ".");
      // Learnt once: later chunks go straight to the final URL. A chain that left the
      // endpoint's origin never gets the token back, even when it returns there.
      const std::string next = http::resolve_location(p->url, *location);
      const bool auth = p->auth && hub::on_endpoint(ctx_, next);
      if (p->url == resolved_url_ && p->url_epoch == url_epoch_) {
        resolved_url_ = next;
        resolved_auth_ = auth;
      }
      start_part(p->pos, p->end, p->failures, next, auth, p->url_epoch, p->hops + 1);
      return;
    }
    if ((status == 401 || status == 403) && !hub::on_endpoint(ctx_, p->url)) {
      refused(*p, status, r.response);
      return;
    }
    if (status >= 200 && status < 300) {
      if (p->pos < p->end) requeue(*p, "the connection closed early", nullptr);
      return;
    }
    if (status == 416) {
      auto cr = r.response.headers.get("Content-Range");
      auto parsed = cr ? http::parse_content_range(*cr) : std::nullopt;
      if (parsed && parsed->complete && *parsed->complete != size_) throw size_mismatch(*parsed->complete);
      requeue(*p, "HTTP 416 for bytes " + std::to_string(p->pos) + "-", nullptr);
      return;
    }
    if (hub::retryable_status(status)) {
      requeue(*p, "HTTP " + std::to_string(status), &r.response);
      return;
    }
    hub::throw_error_from_response(r.response, ctx_);
  }

  void requeue(const Part& p, const std::string& why, const http::Response* response) {
    const int failures = p.pos > p.first ? 1 : p.failures + 1;
    if (failures > settings_.max_retries)
      throw Error(ErrorCode::network, "Download of '" + ctx_.file + "' from " + http::origin_of(p.url) +
                                          " failed after " + std::to_string(settings_.max_retries) +
                                          " retries: " + why + ". The partial file is kept: a re-run resumes it.");
    const auto when = Clock::now() + retry_delay(failures - 1, response);
    if (no_ranges_ && p.pos > 0) {
      // The server said it serves no ranges: the only way on is the whole body again.
      if (++restarts_ > settings_.max_retries)
        throw Error(ErrorCode::network, "Download of '" + ctx_.file + "' from " + http::origin_of(p.url) + " broke " +
                                            std::to_string(restarts_) +
                                            " times and the server serves no ranges: " + why + ".");
      ++generation_;
      done_.clear();
      todo_.clear();
      restart_prefix();
      push_todo(0, size_, failures, when);
      return;
    }
    push_todo(p.pos, p.end, failures, when);
  }

  // The download server (not the Hub) refused the URL: typically a signed CDN URL
  // that expired during a long download. Once per download the URL is resolved
  // afresh through the Hub (its redirect signs a new one) and the range retried;
  // after that the error ends the download, the partial kept for a re-run.
  void refused(const Part& p, long status, const http::Response& response) {
    if (p.url_epoch != url_epoch_) {  // it asked for a URL already replaced
      push_todo(p.pos, p.end, p.failures, Clock::now());
      return;
    }
    if (!reresolved_ && layout::is_commit_hash(job_.meta.commit)) {
      reresolved_ = true;
      ++url_epoch_;
      resolved_url_ = layout::resolve_url(ctx_.endpoint, ctx_.type, ctx_.repo_id, job_.meta.commit, ctx_.file);
      resolved_auth_ = true;
      push_todo(p.pos, p.end, p.failures, Clock::now());
      return;
    }
    std::string detail = response.headers.get("X-Error-Message").value_or(response.body.substr(0, 200));
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == '\r')) detail.pop_back();
    const std::uint64_t kept = done_.total();
    std::string message = "The download server " + http::origin_of(p.url) + " refused '" + ctx_.file + "' of " +
                          std::string(to_string(ctx_.type)) + " '" + ctx_.repo_id + "' with HTTP " +
                          std::to_string(status) + (detail.empty() ? "" : " (" + detail + ")") +
                          ", also with a fresh URL from the Hub: a signed download URL may have expired, or the "
                          "server denies access. ";
    if (kept == 0) throw Error(ErrorCode::http, message + "Run the command again later.");
    throw ResumableError(ErrorCode::http, message + "The " + std::to_string(kept) + " of " + std::to_string(size_) +
                                              " bytes downloaded so far are kept: run the command again to resume.");
  }

  // hub::backoff's policy, without sleeping: other ranges keep going meanwhile.
  static Clock::duration retry_delay(int attempt, const http::Response* response) {
    return hub::retry_delay(attempt, response);
  }

  // No byte for stall_timeout_ on a range: drop its connection, retry that range only.
  void check_stalls() {
    const auto now = active_now();
    std::vector<http::Multi::Id> stalled;
    for (const auto& [id, p] : parts_)
      if (!p->paused && now - p->last_activity > stall_timeout_) stalled.push_back(id);
    for (auto id : stalled) {
      multi_.abort(id);
      std::unique_ptr<Part> p = std::move(parts_[id]);
      parts_.erase(id);
      requeue(*p,
              "no data for " +
                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(stall_timeout_).count()) +
                  " s on bytes " + std::to_string(p->pos) + "-" + std::to_string(p->end - 1),
              nullptr);
    }
  }

  void drop_stale_parts() {
    for (auto it = parts_.begin(); it != parts_.end();) {
      if (it->second->generation != generation_) {
        multi_.abort(it->first);
        it = parts_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // A range came from another version of the object: start over, everything.
  void restart_everything() {
    object_changed_ = false;
    if (++restarts_ > settings_.max_retries)
      throw Error(ErrorCode::network, "The object behind '" + ctx_.file + "' keeps changing during the download.");
    abort_all();
    ++generation_;
    done_.clear();
    todo_.clear();
    push_todo(0, size_, 0, Clock::now());
    validator_.clear();
    restart_prefix();
    if (multi_mode_) ranges_ = Ranges::unknown;
    flush(true);
  }

  // The bytes on disk are void from byte 0: the hash and any watcher start over.
  void restart_prefix() {
    job_.hasher.restart();
    if (job_.watch) job_.watch->restarted();
  }

  void abort_all() {
    for (auto& [id, p] : parts_) multi_.abort(id);
    parts_.clear();
  }

  // ---- bookkeeping -----------------------------------------------------------------
  void flush(bool force) {
    const auto now = Clock::now();
    if (!force && now - last_flush_ < kJournalEvery) return;
    if (!force && done_.total() == flushed_total_ && validator_ == job_.journal.validator && !flushed_clear_pending())
      return;
    // A journal must never stay next to a name that is no longer our file. Checked
    // before the write, and after it: a claim can rename the file away in between,
    // and the journal we just wrote would then be left behind under the old name.
    if (!still_owned(job_.fd, job_.temp)) throw LostClaim();
    job_.journal.validator = validator_;
    write_journal(job_.temp, job_.journal);
    if (!still_owned(job_.fd, job_.temp)) {
      // Nobody else writes under our old name, and a claimant that has not moved
      // the journal yet writes its own right after its claim.
      ::unlink(sidecar_of(job_.temp).c_str());
      ::unlink(sidecar_temp_of(job_.temp).c_str());
      throw LostClaim();
    }
    flushed_total_ = done_.total();
    flushed_generation_ = generation_;
    last_flush_ = now;
  }
  bool flushed_clear_pending() const { return flushed_generation_ != generation_; }

  void report(bool force) {
    if (!job_.options.progress) return;
    const auto now = Clock::now();
    if (!force && (now - last_report_ < kReportEvery || done_.total() == reported_)) return;
    last_report_ = now;
    reported_ = done_.total();
    job_.options.progress(ProgressEvent{ctx_.repo_id, ctx_.file, reported_, size_, false});
  }

  http::Multi& multi_;
  FetchJob& job_;
  const hub::Context& ctx_;
  const Settings& settings_;
  const std::uint64_t size_;
  IntervalSet& done_;
  std::string resolved_url_;
  bool resolved_auth_ = false;  // resolved_url_ may carry Authorization
  unsigned url_epoch_ = 0;      // bumped when the URL is resolved afresh
  bool reresolved_ = false;
  std::string validator_;
  std::shared_ptr<RateLimiter> limiter_;
  const Clock::duration stall_timeout_;
  std::size_t slots_ = 1;
  bool multi_mode_ = false;
  Ranges ranges_ = Ranges::unknown;
  std::uint64_t initial_chunk_ = kMinChunk;
  std::vector<Todo> todo_;
  std::map<http::Multi::Id, std::unique_ptr<Part>> parts_;
  unsigned generation_ = 0;
  unsigned flushed_generation_ = 0;
  int restarts_ = 0;
  bool object_changed_ = false;
  bool no_ranges_ = false;  // a whole body came without Accept-Ranges: bytes
  std::optional<Error> fatal_;
  std::uint64_t received_ = 0;
  std::uint64_t flushed_total_ = UINT64_MAX;
  std::uint64_t reported_ = UINT64_MAX;
  const Clock::time_point started_ = Clock::now();
  Clock::time_point last_flush_ = started_;  // a quick download writes no journal at all
  Clock::time_point last_report_{};
};

}  // namespace

void fetch_missing(http::Multi& multi, FetchJob& job) {
  Engine engine(multi, job);
  engine.run();
}

}  // namespace hubcache::transfer
