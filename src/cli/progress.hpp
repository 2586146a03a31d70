// Progress bars on stderr (only when stderr is a terminal): one line per file in
// flight with bytes, rate and ETA.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "hubcache/options.hpp"

namespace hubcache::cli {

class ProgressBars {
 public:
  // Enabled only on a terminal, unless quiet or HF_HUB_DISABLE_PROGRESS_BARS.
  explicit ProgressBars(bool quiet);
  ~ProgressBars();
  bool enabled() const { return enabled_; }
  // A callback for Options::progress (thread-safe).
  ProgressCallback callback();

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
  std::chrono::steady_clock::time_point last_draw_{};
};

// "970.7M" style sizes (decimal units, like huggingface_hub).
std::string format_size(double bytes);

}  // namespace hubcache::cli
