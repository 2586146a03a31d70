// Single-flight fills: one upstream transfer per blob, streamed to every request
// that waits for it while it arrives.
//
// A Fill puts one blob (`blobs/<etag>` of one repo) into the cache. In this process
// there is at most one Fill per blob (Fills keeps them); across processes sharing the
// cache folder, the blob's download lock decides:
//  - the process that takes the lock downloads with the download engine
//    (transfer::download_file: ranges over several connections, resume, verification,
//    publication) and watches it (transfer/watch.hpp) to learn which bytes are on disk;
//  - a process that finds the lock held follows the owner's partial
//    `blobs/<etag>.<8hex>.incomplete` and its resume journal (`<partial>.resume`, which
//    the engine writes after the bytes it lists) to learn the bytes on disk, learns
//    success when `blobs/<etag>` appears (the same file, renamed), and failure when the
//    partial vanishes without a blob. If the owner dies (its lock is released), the
//    follower takes the lock and resumes the same partial: its readers go on.
//
// The bytes of one temp file are an Attempt. Readers stream from an Attempt; a second
// temp file (the engine started over) makes a new Attempt and ends the old one with a
// failure, so no reader ever mixes bytes of two files.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "hub/hub_client.hpp"
#include "hubcache/options.hpp"
#include "mirror/metrics.hpp"
#include "transfer/intervals.hpp"

namespace hubcache::mirror {

namespace fs = std::filesystem;

// The bytes of one temp file of a fill. Thread-safe.
class Attempt {
 public:
  enum class State { growing, complete, failed };
  struct View {
    std::uint64_t available = 0;  // bytes [from, available) may be sent (see listen)
    State state = State::growing;
  };
  // Takes ownership of `fd` (open for reading the temp file).
  Attempt(int fd, std::uint64_t size);
  ~Attempt();
  Attempt(const Attempt&) = delete;
  Attempt& operator=(const Attempt&) = delete;

  int fd() const { return fd_; }
  std::uint64_t size() const { return size_; }
  dev_t device() const { return dev_; }
  ino_t inode() const { return ino_; }

  // A reader of bytes from `from` on. `fn` is called now and after every change, one
  // call at a time, from the thread making the change, until it returns false or the
  // state is final. View::available is where the bytes it may send end: the end of the
  // contiguous run on disk that holds `from` (`from` itself when that byte is missing),
  // and never the file's last byte before the blob verified: a client only ever
  // receives a whole file that passed the hash check. A range that ends before the
  // last byte is sent as soon as its bytes are on disk. `fn` must be quick and must not
  // call back into this Attempt.
  using Listener = std::function<bool(const View&)>;
  void listen(std::uint64_t from, Listener fn);

  // Producer side.
  void update(const transfer::IntervalSet& done);  // the ranges on disk (only grows)
  void complete();
  void fail(const std::string& why);

  State state() const;
  std::string error() const;
  transfer::IntervalSet done() const;
  // Offsets active readers wait for (ascending): where their runs end, or their start.
  std::vector<std::uint64_t> wanted() const;
  std::size_t readers() const;

 private:
  struct Reader {
    std::uint64_t from;
    Listener fn;
  };
  View view_for(std::uint64_t from) const;  // mutex_ held
  void notify();

  const int fd_;
  const std::uint64_t size_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  mutable std::mutex mutex_;
  transfer::IntervalSet done_;
  State state_ = State::growing;
  std::string error_;
  std::vector<std::shared_ptr<Reader>> readers_;
  std::mutex delivery_;  // one notification round at a time, in order
};

// What a fill needs to know about its blob.
struct FillJob {
  fs::path root;  // cache root (resolved)
  RepoType type = RepoType::model;
  std::string repo_id;
  std::string commit;
  std::string file;                  // path in the repo (the snapshot pointer to make)
  hub::FileMetadata meta;            // etag, size, location (where the engine GETs: the upstream resolve URL)
  std::optional<std::string> token;  // for the upstream, when the repo needs one
};

class Fill {
 public:
  // What a waiting request gets, once: an attempt to stream from, or the fill's end.
  struct Outcome {
    std::shared_ptr<Attempt> attempt;  // stream this
    bool in_cache = false;             // the blob is in the cache: serve it from there
    std::string error;                 // the fill failed (upstream, integrity, disk)
    bool upstream_down = false;        // ... because the upstream could not be reached
  };
  using Waiter = std::function<void(const Outcome&)>;

  explicit Fill(FillJob job);
  const FillJob& job() const { return job_; }
  std::uint64_t size() const { return job_.meta.size; }

  // `fn` is called once: at once when an attempt exists or the fill has ended, else
  // when the first attempt starts or the fill ends (from the fill's thread).
  void wait(Waiter fn);
  bool finished() const;
  std::size_t waiting() const;  // waiters without an attempt yet, plus readers of the current one

 private:
  friend class Fills;
  friend class FillWatch;
  void publish(std::shared_ptr<Attempt> attempt);  // a new current attempt (the old one fails)
  void finish(const Outcome& end);
  std::shared_ptr<Attempt> current() const;

  const FillJob job_;
  mutable std::mutex mutex_;
  std::shared_ptr<Attempt> current_;
  std::vector<Waiter> waiters_;
  std::optional<Outcome> end_;
};

struct FillSettings {
  std::string upstream;                        // endpoint for the download engine
  int connections = 8;                         // per file
  std::size_t max_parallel = 32;               // fills transferring at once (more wait their turn)
  std::chrono::milliseconds follow_every{50};  // how often a follower looks at the partial
};

// Every fill of this process, one per blob.
class Fills {
 public:
  // `on_done(job, downloaded)` runs after a fill put its blob in the cache (for --max-size).
  Fills(FillSettings settings, Metrics& metrics, std::function<void(const FillJob&, std::uint64_t)> on_done = nullptr);
  ~Fills();
  Fills(const Fills&) = delete;
  Fills& operator=(const Fills&) = delete;

  // The running fill of job's blob, or a new one started on its own thread.
  std::shared_ptr<Fill> start(const FillJob& job);
  // Cancels every fill (partials stay for the next run to resume) and joins them.
  void stop();

  std::size_t in_flight() const;
  std::size_t waiting_clients() const;
  // True while a fill of this process works on `blob` (a path under blobs/).
  bool busy(const fs::path& blob) const;

 private:
  void run(std::shared_ptr<Fill> fill);
  void own(Fill& fill, const fs::path& blob, bool lock_held);
  bool follow(Fill& fill, struct Following& state, const fs::path& blob);

  FillSettings settings_;
  Metrics& metrics_;
  std::function<void(const FillJob&, std::uint64_t)> on_done_;
  std::atomic<bool> cancel_{false};
  std::counting_semaphore<1024> slots_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Fill>> fills_;  // key: blob path
  std::size_t running_ = 0;                             // fill threads alive
  std::condition_variable stopped_cv_;
};

}  // namespace hubcache::mirror
