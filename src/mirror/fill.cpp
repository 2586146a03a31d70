#include "mirror/fill.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "hubcache/error.hpp"
#include "store/repo_cache.hpp"
#include "transfer/download.hpp"
#include "transfer/journal.hpp"
#include "transfer/watch.hpp"
#include "util/fs.hpp"

namespace hubcache::mirror {

// ---- Attempt ----------------------------------------------------------------------

Attempt::Attempt(int fd, std::uint64_t size) : fd_(fd), size_(size) {
  struct stat st {};
  if (::fstat(fd_, &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
}

Attempt::~Attempt() {
  if (fd_ >= 0) ::close(fd_);
}

Attempt::View Attempt::view_for(std::uint64_t from) const {
  View v;
  v.state = state_;
  if (state_ == State::complete) {
    v.available = size_;
    return v;
  }
  std::uint64_t end = from;
  for (const auto& [a, b] : done_.ranges())
    if (a <= from && from < b) {
      end = b;
      break;
    }
  // The file's last byte waits for the verdict of the hash check.
  v.available = std::min(end, size_ == 0 ? 0 : size_ - 1);
  return v;
}

void Attempt::notify() {
  std::lock_guard delivery(delivery_);
  std::vector<std::pair<std::shared_ptr<Reader>, View>> calls;
  {
    std::lock_guard lock(mutex_);
    for (const auto& r : readers_) calls.emplace_back(r, view_for(r->from));
  }
  std::vector<std::shared_ptr<Reader>> gone;
  for (auto& [r, v] : calls)
    if (!r->fn(v) || v.state != State::growing) gone.push_back(r);
  if (gone.empty()) return;
  std::lock_guard lock(mutex_);
  std::erase_if(readers_, [&](const auto& r) { return std::find(gone.begin(), gone.end(), r) != gone.end(); });
}

void Attempt::listen(std::uint64_t from, Listener fn) {
  std::lock_guard delivery(delivery_);
  auto reader = std::make_shared<Reader>(Reader{from, std::move(fn)});
  View v;
  {
    std::lock_guard lock(mutex_);
    v = view_for(from);
    if (v.state == State::growing) readers_.push_back(reader);
  }
  if (!reader->fn(v) && v.state == State::growing) {
    std::lock_guard lock(mutex_);
    std::erase(readers_, reader);
  }
}

void Attempt::update(const transfer::IntervalSet& done) {
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::growing) return;
    // Ranges only grow: keep what was published even if a report lags behind.
    for (const auto& [a, b] : done.ranges()) done_.add(a, std::min(b, size_));
  }
  notify();
}

void Attempt::complete() {
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::growing) return;
    state_ = State::complete;
    done_.add(0, size_);
  }
  notify();
}

void Attempt::fail(const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::growing) return;
    state_ = State::failed;
    error_ = why;
  }
  notify();
}

Attempt::State Attempt::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

std::string Attempt::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

transfer::IntervalSet Attempt::done() const {
  std::lock_guard lock(mutex_);
  return done_;
}

std::vector<std::uint64_t> Attempt::wanted() const {
  std::vector<std::uint64_t> out;
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::growing) return out;
    const auto ranges = done_.ranges();
    for (const auto& r : readers_) {
      std::uint64_t at = r->from;
      for (const auto& [a, b] : ranges)
        if (a <= at && at < b) {
          at = b;
          break;
        }
      if (at < size_) out.push_back(at);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::size_t Attempt::readers() const {
  std::lock_guard lock(mutex_);
  return readers_.size();
}

// ---- Fill -------------------------------------------------------------------------

Fill::Fill(FillJob job) : job_(std::move(job)) {}

void Fill::wait(Waiter fn) {
  Outcome now;
  {
    std::lock_guard lock(mutex_);
    if (end_) {
      now = *end_;
    } else if (current_ && current_->state() == Attempt::State::growing) {
      now.attempt = current_;
    } else {  // nothing to stream yet, or the attempt just ended and the fill is about to
      waiters_.push_back(std::move(fn));
      return;
    }
  }
  fn(now);
}

bool Fill::finished() const {
  std::lock_guard lock(mutex_);
  return end_.has_value();
}

std::size_t Fill::waiting() const {
  std::lock_guard lock(mutex_);
  return waiters_.size() + (current_ && !end_ ? current_->readers() : 0);
}

std::shared_ptr<Attempt> Fill::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void Fill::publish(std::shared_ptr<Attempt> attempt) {
  std::shared_ptr<Attempt> old;
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mutex_);
    old = std::exchange(current_, attempt);
    if (attempt) waiters.swap(waiters_);
  }
  if (old && old != attempt) old->fail("the download started over");
  for (auto& w : waiters) w(Outcome{attempt, false, "", false});
}

void Fill::finish(const Outcome& end) {
  std::vector<Waiter> waiters;
  {
    std::lock_guard lock(mutex_);
    end_ = end;
    waiters.swap(waiters_);
  }
  for (auto& w : waiters) w(end);
}

// ---- the owner's watch --------------------------------------------------------------

// Adapts the download engine's reports (transfer/watch.hpp) to the fill's attempts.
// An attempt is handed to waiting requests once its first bytes are on disk: a
// download that fails before that (the upstream is down) ends the fill with an error
// they can answer clearly, instead of a response that starts and breaks.
class FillWatch final : public transfer::DownloadWatch {
 public:
  explicit FillWatch(Fill& fill) : fill_(fill) {}

  void started(int fd, const fs::path&, std::uint64_t size) override {
    struct stat st {};
    ::fstat(fd, &st);
    // The partial this process followed, now claimed by it: its readers go on.
    if (auto cur = fill_.current();
        cur && cur->state() == Attempt::State::growing && cur->device() == st.st_dev && cur->inode() == st.st_ino) {
      attempt_ = cur;
      pending_ = false;
      return;
    }
    fresh(fd, size);
  }
  void progress(const transfer::IntervalSet& done) override {
    if (!attempt_) return;
    attempt_->update(done);
    if (pending_ && !done.empty()) {
      pending_ = false;
      fill_.publish(attempt_);
    }
  }
  void restarted() override {
    if (attempt_) fresh(attempt_->fd(), attempt_->size());
  }
  std::vector<std::uint64_t> wanted() override { return attempt_ ? attempt_->wanted() : std::vector<std::uint64_t>{}; }

  std::shared_ptr<Attempt> attempt() const { return attempt_; }

 private:
  void fresh(int fd, std::uint64_t size) {
    // Readers of an earlier file stop now; new ones wait for this one's first bytes.
    fill_.publish(nullptr);
    attempt_.reset();
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return;  // out of descriptors: readers wait for the blob instead
    attempt_ = std::make_shared<Attempt>(copy, size);
    pending_ = true;
  }
  Fill& fill_;
  std::shared_ptr<Attempt> attempt_;
  bool pending_ = false;
};

// ---- Fills ------------------------------------------------------------------------

namespace {

bool partial_of(const std::string& name, const std::string& etag) {
  return name.size() > etag.size() + 11 && name.compare(0, etag.size() + 1, etag + ".") == 0 &&
         name.compare(name.size() - 11, 11, ".incomplete") == 0;
}

// The partial of `etag` in `blobs` most recently written to (the live one), or the one
// that is the file (dev, ino) when given (a partial renamed by a claim).
std::optional<fs::path> find_partial(const fs::path& blobs, const std::string& etag, dev_t dev = 0, ino_t ino = 0) {
  std::optional<fs::path> best;
  timespec newest{};
  std::error_code ec;
  for (auto it = fs::directory_iterator(blobs, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!partial_of(name, etag)) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (ino != 0) {
      if (st.st_dev == dev && st.st_ino == ino) return it->path();
      continue;
    }
    if (!best || st.st_mtim.tv_sec > newest.tv_sec ||
        (st.st_mtim.tv_sec == newest.tv_sec && st.st_mtim.tv_nsec > newest.tv_nsec)) {
      best = it->path();
      newest = st.st_mtim;
    }
  }
  return best;
}

}  // namespace

// What a follower knows about the partial it follows.
struct Following {
  fs::path partial;
  std::shared_ptr<Attempt> attempt;
  bool published = false;  // handed to waiting requests (once bytes were on disk)
};

Fills::Fills(FillSettings settings, Metrics& metrics, std::function<void(const FillJob&, std::uint64_t)> on_done)
    : settings_(std::move(settings)),
      metrics_(metrics),
      on_done_(std::move(on_done)),
      slots_(static_cast<std::ptrdiff_t>(std::clamp<std::size_t>(settings_.max_parallel, 1, 1024))) {}

Fills::~Fills() { stop(); }

std::shared_ptr<Fill> Fills::start(const FillJob& job) {
  store::RepoCache cache(job.root, job.repo_id, job.type);
  const std::string key = cache.blob_path(job.meta.etag).string();
  std::lock_guard lock(mutex_);
  std::erase_if(fills_, [](const auto& kv) { return kv.second->finished(); });  // one entry per blob in flight
  if (auto it = fills_.find(key); it != fills_.end()) return it->second;
  auto fill = std::make_shared<Fill>(job);
  fills_[key] = fill;
  if (cancel_) {
    fill->finish(Fill::Outcome{nullptr, false, "the server is stopping", false});
    return fill;
  }
  ++running_;
  std::thread([this, fill] {
    run(fill);
    std::lock_guard done(mutex_);
    --running_;
    stopped_cv_.notify_all();
  }).detach();
  return fill;
}

void Fills::stop() {
  cancel_ = true;
  std::unique_lock lock(mutex_);
  stopped_cv_.wait(lock, [this] { return running_ == 0; });
}

std::size_t Fills::in_flight() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [k, f] : fills_)
    if (!f->finished()) ++n;
  return n;
}

std::size_t Fills::waiting_clients() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& [k, f] : fills_)
    if (!f->finished()) n += f->waiting();
  return n;
}

bool Fills::busy(const fs::path& blob) const {
  std::lock_guard lock(mutex_);
  auto it = fills_.find(blob.string());
  return it != fills_.end() && !it->second->finished();
}

void Fills::run(std::shared_ptr<Fill> fill) {
  const FillJob& job = fill->job();
  auto end_with = [&](const std::string& error, bool down) {
    // Ended before its readers hear of it: a request arriving now starts a new fill.
    auto cur = fill->current();
    fill->finish(Fill::Outcome{nullptr, false, error, down});
    if (cur) cur->fail(error);
    metrics_.add("hubcache_upstream_fills_total", {{"result", "failed"}});
  };
  // A turn among the fills transferring at once.
  while (!slots_.try_acquire_for(std::chrono::milliseconds(100)))
    if (cancel_) return end_with("the server is stopping", false);
  struct Release {
    std::counting_semaphore<1024>& s;
    ~Release() { s.release(); }
  } release{slots_};

  try {
    store::RepoCache cache(job.root, job.repo_id, job.type);
    const fs::path blob = cache.blob_path(job.meta.etag);
    const fs::path lock = cache.lock_path(job.meta.etag);
    Following following;
    for (;;) {
      if (cancel_) return end_with("the server is stopping", false);
      if (util::is_regular_file(blob)) return own(*fill, blob, false);  // there already: link it
      // The lock is tried, never waited for: whoever holds it downloads, and this
      // process follows its partial until it ends (or takes over if it dies).
      store::FileLock held(lock, store::FileLock::TryOnce{});
      if (!held.busy()) return own(*fill, blob, held.held());
      if (follow(*fill, following, blob)) return;
      std::this_thread::sleep_for(settings_.follow_every);
    }
  } catch (const Error& e) {
    end_with(e.what(), e.code() == ErrorCode::network);
  } catch (const std::exception& e) {
    end_with(std::string("mirror fill: ") + e.what(), false);
  }
}

// Downloads the blob in this process (or, when it is there by now, just links it).
// `lock_held`: the caller holds the blob's lock for the whole call.
void Fills::own(Fill& fill, const fs::path& blob, bool lock_held) {
  const FillJob& job = fill.job();
  Options o;
  o.endpoint = settings_.upstream;
  o.token = job.token.value_or("");  // "" = no token; never the environment's HF_TOKEN
  o.revision = job.commit;
  o.repo_type = job.type;
  o.cache_dir = job.root;
  o.connections = settings_.connections;
  o.cancel = &cancel_;
  // Bytes fetched upstream: the growth of each progress report (a resumed partial's
  // first report is its starting point, not a transfer).
  std::optional<std::uint64_t> last;
  o.progress = [&](const ProgressEvent& ev) {
    if (last && ev.downloaded > *last) metrics_.add("hubcache_upstream_bytes_total", {}, double(ev.downloaded - *last));
    last = ev.downloaded;
  };
  FillWatch watch(fill);
  metrics_.add("hubcache_upstream_fills_total", {{"result", "started"}});
  try {
    transfer::ScopedDownloadWatch scope(&watch);
    store::RepoCache cache(job.root, job.repo_id, job.type);
    transfer::BatchHints hints;
    hints.lock_held = lock_held;
    transfer::download_file(cache, job.file, job.commit, job.meta, o, hints);
  } catch (const Error& e) {
    auto cur = fill.current();
    fill.finish(Fill::Outcome{nullptr, false, e.what(), e.code() == ErrorCode::network});
    if (cur) cur->fail(e.what());
    metrics_.add("hubcache_upstream_fills_total", {{"result", "failed"}});
    return;
  }
  // The blob is published. The attempt readers stream from is that very file when
  // the bytes came through it (the rename keeps the inode; without symlinks the blob
  // was moved on to the snapshot); otherwise it is void.
  if (auto cur = fill.current()) {
    struct stat st {};
    const fs::path pointer = store::RepoCache(job.root, job.repo_id, job.type).pointer_path(job.commit, job.file);
    const bool same = (::stat(blob.c_str(), &st) == 0 || ::stat(pointer.c_str(), &st) == 0) &&
                      st.st_dev == cur->device() && st.st_ino == cur->inode();
    if (same)
      cur->complete();
    else
      cur->fail("the blob came from another download");
  }
  fill.finish(Fill::Outcome{nullptr, true, "", false});
  metrics_.add("hubcache_upstream_fills_total", {{"result", "complete"}});
  if (on_done_) on_done_(job, watch.attempt() ? job.meta.size : 0);
}

// One look at another process's download of the blob. True when the fill ended here.
bool Fills::follow(Fill& fill, Following& f, const fs::path& blob) {
  const FillJob& job = fill.job();
  const fs::path blobs = blob.parent_path();
  if (f.attempt) {
    struct stat st {};
    const bool same =
        ::stat(f.partial.c_str(), &st) == 0 && st.st_dev == f.attempt->device() && st.st_ino == f.attempt->inode();
    if (!same) {
      // Claimed by another run (renamed, same file), published, or given up.
      if (auto moved = find_partial(blobs, job.meta.etag, f.attempt->device(), f.attempt->inode())) {
        f.partial = *moved;
      } else if (util::is_regular_file(blob)) {
        return false;  // the caller sees the blob and finishes
      } else {
        const std::string why = "the download of this file in another process stopped before it was complete";
        fill.finish(Fill::Outcome{nullptr, false, why, false});
        f.attempt->fail(why);
        metrics_.add("hubcache_upstream_fills_total", {{"result", "failed"}});
        return true;
      }
    }
  } else {
    auto partial = find_partial(blobs, job.meta.etag);
    if (!partial) return false;  // not started yet
    int fd = ::open(partial->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return false;
    }
    f.partial = *partial;
    f.attempt = std::make_shared<Attempt>(fd, job.meta.size);
    f.published = false;
    metrics_.add("hubcache_upstream_fills_total", {{"result", "followed"}});
  }
  // What is on disk: the journal's ranges (written after the bytes it lists), or, for
  // a partial without one that is shorter than the file, its length: tools that write
  // sequentially (Python, @huggingface/hub) keep no journal and do not presize.
  struct stat st {};
  if (::fstat(f.attempt->fd(), &st) != 0) return false;
  const auto length = static_cast<std::uint64_t>(st.st_size);
  transfer::IntervalSet done;
  if (auto text = util::read_small_file(transfer::sidecar_of(f.partial))) {
    auto journal = transfer::parse_journal(*text, length);
    if (!journal || journal->etag != job.meta.etag || journal->size != job.meta.size) return false;
    done = journal->done;
    // Ranges that shrank: the owner started over from byte 0 in the same file.
    const auto before = f.attempt->done();
    for (const auto& [a, b] : before.ranges())
      if (!done.covers(a, b)) {
        int copy = ::fcntl(f.attempt->fd(), F_DUPFD_CLOEXEC, 0);
        if (copy < 0) return false;
        fill.publish(nullptr);  // its readers stop; new ones wait for the new bytes
        f.attempt = std::make_shared<Attempt>(copy, job.meta.size);
        f.published = false;
        break;
      }
  } else if (length < job.meta.size) {
    done.add(0, length);
  }
  f.attempt->update(done);
  if (!f.published && !done.empty()) {
    f.published = true;
    fill.publish(f.attempt);
  }
  return false;
}

}  // namespace hubcache::mirror
