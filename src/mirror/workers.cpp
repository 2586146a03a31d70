#include "mirror/workers.hpp"

#include <cstdio>

namespace hubcache::mirror {

namespace {
// A job that throws (a bug: jobs answer their requests themselves) must not end the
// process and every client's transfer with it: it is logged, and the responders it
// dropped answer 500.
void run_guarded(const std::function<void()>& job) {
  try {
    job();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mirror: internal error in a background job: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "mirror: internal error in a background job\n");
  }
}
}  // namespace

WorkerPool::WorkerPool(std::size_t threads) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i) threads_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void WorkerPool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

std::size_t WorkerPool::queued() const {
  std::lock_guard lock(mutex_);
  return jobs_.size();
}

void WorkerPool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing left
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    run_guarded(job);
    lock.lock();
  }
}

Timer::Timer() : thread_([this] { work(); }) {}

Timer::~Timer() { stop(); }

void Timer::after(std::chrono::milliseconds delay, std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    jobs_.emplace(std::chrono::steady_clock::now() + delay, std::move(job));
  }
  cv_.notify_one();
}

void Timer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Timer::work() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (jobs_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const auto when = jobs_.begin()->first;
    if (std::chrono::steady_clock::now() < when) {
      cv_.wait_until(lock, when);
      continue;
    }
    auto job = std::move(jobs_.begin()->second);
    jobs_.erase(jobs_.begin());
    lock.unlock();
    run_guarded(job);  // may call after(): the lock is not held
    lock.lock();
  }
}

}  // namespace hubcache::mirror
