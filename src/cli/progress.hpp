// Progress bars on stderr (only when both stdout and stderr are terminals): one
// line per file in flight with bytes, rate and ETA, and a total line for a repo.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "hubcache/options.hpp"

namespace hubcache::cli {

class ProgressBars {
 public:
  // Enabled only on a terminal (stdout and stderr), unless quiet or HF_HUB_DISABLE_PROGRESS_BARS.
  explicit ProgressBars(bool quiet);
  ~ProgressBars();
  bool enabled() const { return enabled_; }
  // A callback for Options::progress (thread-safe).
  ProgressCallback callback();
  // A whole-repo download: show a total line (files done / total, bytes, rate, ETA).
  void expect(std::size_t files, std::uint64_t bytes);

 private:
  struct Bar {
    std::uint64_t done = 0, total = 0, start_bytes = 0;
    std::chrono::steady_clock::time_point start;
    bool finished = false;
  };
  void update(const ProgressEvent& e);
  void draw();

  bool enabled_;
  std::mutex mutex_;
  std::map<std::string, Bar> bars_;
  std::size_t lines_drawn_ = 0;
  std::size_t total_files_ = 0, done_files_ = 0;
  std::uint64_t total_bytes_ = 0, finished_bytes_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
};

// "970.7M" style sizes (decimal units, like huggingface_hub).
std::string format_size(double bytes);

}  // namespace hubcache::cli
