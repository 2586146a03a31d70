// Threads for the mirror's blocking work (upstream requests), and single-flight:
// however many requests want the same upstream answer at once, it is asked once.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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

// Joins concurrent calls with the same key: the first runs `work` on the pool, every
// caller's `done` gets its result (on the thread that ran it). A call after the
// result was delivered runs `work` again: nothing is kept here (callers keep caches).
// `work` must not throw.
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
      T result = work();
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
        for (auto& c : callers) c(result);
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
