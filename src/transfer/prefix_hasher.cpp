#include "transfer/prefix_hasher.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>

#include "hubcache/error.hpp"
#include "util/fs.hpp"

namespace hubcache::transfer {

namespace {
constexpr std::size_t kStep = 1u << 20;               // bytes per read (RSS stays small)
constexpr std::uint64_t kWriteBackEvery = 16u << 20;  // start writeback in steps this big
}  // namespace

PrefixHasher::PrefixHasher(int fd, std::optional<util::HashKind> kind, std::uint64_t size)
    : fd_(fd), kind_(kind), size_(size) {
  if (size_ > kInlineHashMax) thread_ = std::thread([this] { run(); });
}

PrefixHasher::~PrefixHasher() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PrefixHasher::advance(std::uint64_t ready) {
  {
    std::lock_guard lock(mutex_);
    if (ready <= ready_) return;
    ready_ = std::min(ready, size_);
  }
  cv_.notify_all();
}

void PrefixHasher::restart() {
  {
    std::lock_guard lock(mutex_);
    restart_ = true;
    ready_ = 0;
    done_ = false;
    error_ = 0;
  }
  cv_.notify_all();
}

std::string PrefixHasher::finish(const std::atomic<bool>* cancel) {
  if (!thread_.joinable()) return hash_inline();
  advance(size_);
  std::unique_lock lock(mutex_);
  while (!done_ && !error_) {
    if (cancel && cancel->load()) throw Error(ErrorCode::cancelled, "Cancelled.");
    cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  if (error_) util::throw_errno(error_, "Cannot read back a download to verify it");
  return digest_;
}

std::string PrefixHasher::hash_inline() {
  if (!kind_) return "";
  util::Hasher hasher(*kind_, size_);
  std::unique_ptr<char[]> buf(new char[std::max<std::size_t>(1, static_cast<std::size_t>(size_))]);
  std::size_t got = 0;
  while (got < size_) {
    ssize_t n = ::pread(fd_, buf.get() + got, static_cast<std::size_t>(size_) - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) util::throw_errno(n < 0 ? errno : EIO, "Cannot read back a download to verify it");
    got += static_cast<std::size_t>(n);
  }
  hasher.update(buf.get(), got);
  return hasher.hex_digest();
}

void PrefixHasher::run() {
  std::unique_ptr<char[]> buf(new char[kStep]);
  std::optional<util::Hasher> hasher;
  if (kind_) hasher.emplace(*kind_, size_);
  std::uint64_t written_back = 0;
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || restart_ || (!done_ && !error_ && (hashed_ < ready_ || hashed_ == size_)); });
    if (stop_) return;
    if (restart_) {
      restart_ = false;
      error_ = 0;
      hashed_ = 0;
      written_back = 0;
      if (kind_) hasher.emplace(*kind_, size_);
      continue;
    }
    if (hashed_ == size_) {
      // All bytes are in (also the empty file).
      if (hasher) digest_ = hasher->hex_digest();
      done_ = true;
      cv_.notify_all();
      continue;
    }
    const std::uint64_t at = hashed_;
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kStep, ready_ - at));
    lock.unlock();
    std::size_t got = 0;
    int err = 0;
    if (hasher) {
      while (got < want) {
        ssize_t n = ::pread(fd_, buf.get() + got, want - got, static_cast<off_t>(at + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          err = n < 0 ? errno : EIO;  // a short file: truncated behind our back
          break;
        }
        got += static_cast<std::size_t>(n);
      }
      if (!err) hasher->update(buf.get(), got);
    } else {
      got = want;
    }
    if (!err && at + got - written_back >= kWriteBackEvery) {
#ifdef SYNC_FILE_RANGE_WRITE
      // Start writeback now, off the network path; the final fsync waits only for the tail.
      ::sync_file_range(fd_, static_cast<off_t>(written_back), static_cast<off_t>(at + got - written_back),
                        SYNC_FILE_RANGE_WRITE);
#endif
      written_back = at + got;
    }
    lock.lock();
    if (restart_) continue;  // the bytes just hashed are stale
    if (err) {
      error_ = err;
      cv_.notify_all();
      continue;
    }
    hashed_ = at + got;
  }
}

}  // namespace hubcache::transfer
