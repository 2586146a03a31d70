// Threads for the mirror's blocking work (upstream requests), and single-flight:
// however many requests want the same upstream answer at once, it is asked once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hubcache::mirror {

// A fixed set of threads running posted jobs in order. stop() (or the destructor)
// runs what is queued, then joins.
class WorkerPool {
 public:
  explicit WorkerPool(std::size_t threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void post(std::function<void()> job);
  void stop();
  std::size_t queued() const;

 private:
  void work();
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

// Runs jobs after a delay, on its own thread (jobs must be short: they answer from the
// cache). stop() (or the destructor) drops what has not run yet and joins.
class Timer {
 public:
  Timer();
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void after(std::chrono::milliseconds delay, std::function<void()> job);
  void stop();

 private:
  void work();
  std::mutex mutex_;
  std::condition_variable cv_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

// Joins concurrent calls with the same key: the first runs `work` on the pool, every
// caller's `done` gets its result (on the thread that ran it). A call after the
// result was delivered runs `work` again: nothing is kept here (callers keep caches).
// `work` must not throw (if it does, the callers are dropped and the key released).
template <class T>
class SingleFlight {
 public:
  explicit SingleFlight(WorkerPool& pool) : pool_(pool) {}

  void run(const std::string& key, std::function<T()> work, std::function<void(const T&)> done) {
    {
      std::lock_guard lock(mutex_);
      auto it = waiting_.find(key);
      if (it != waiting_.end()) {
        it->second.push_back(std::move(done));
        return;
      }
      waiting_[key].push_back(std::move(done));
    }
    pool_.post([this, key, work = std::move(work)] {
      // `work` should not throw, nor a caller's `done`; if one does (a bug), the key must
      // still be released, or every later call with it would wait for ever. A caller left
      // without a result drops its responder, which answers 500.
      std::optional<T> result;
      try {
        result = work();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "mirror: internal error (%s): %s\n", key.c_str(), e.what());
      }
      // Callers that join while the result is being delivered get it too: they may
      // have looked for what the first callers are about to record (a branch's commit).
      for (;;) {
        std::vector<std::function<void(const T&)>> callers;
        {
          std::lock_guard lock(mutex_);
          auto it = waiting_.find(key);
          if (it->second.empty()) {
            waiting_.erase(it);
            return;
          }
          callers.swap(it->second);
        }
        if (!result) continue;  // the callers are dropped
        for (auto& c : callers) try {
            c(*result);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "mirror: internal error (%s): %s\n", key.c_str(), e.what());
          }
      }
    });
  }

  // Calls in flight (for tests and metrics).
  std::size_t in_flight() const {
    std::lock_guard lock(mutex_);
    return waiting_.size();
  }

 private:
  WorkerPool& pool_;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::function<void(const T&)>>> waiting_;
};

}  // namespace hubcache::mirror
