#include "cli/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "hubcache/settings.hpp"

namespace hubcache::cli {

std::string format_size(double bytes) {
  const char* units[] = {"", "K", "M", "G", "T", "P"};
  int u = 0;
  while (bytes >= 1000 && u < 5) {
    bytes /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", bytes, units[u]);
  return buf;
}

// Bars only for a person watching: stdout a terminal too, so `$(hubcache download ...)`
// and redirected runs print nothing but the result.
ProgressBars::ProgressBars(bool quiet)
    : enabled_(!quiet && ::isatty(STDOUT_FILENO) && ::isatty(STDERR_FILENO) && !Settings::get().disable_progress_bars) {
}

ProgressBars::~ProgressBars() {
  if (enabled_ && lines_drawn_) {
    std::lock_guard lock(mutex_);
    draw();
    std::fflush(stderr);
  }
}

ProgressCallback ProgressBars::callback() {
  if (!enabled_) return nullptr;
  return [this](const ProgressEvent& e) { update(e); };
}

void ProgressBars::expect(std::size_t files, std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  total_files_ = files;
  total_bytes_ = bytes;
  started_ = std::chrono::steady_clock::now();
}

void ProgressBars::update(const ProgressEvent& e) {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  auto [it, inserted] = bars_.try_emplace(e.file);
  Bar& bar = it->second;
  if (inserted) {
    bar.start = now;
    bar.start_bytes = e.downloaded;
  }
  bar.done = e.downloaded;
  bar.total = e.total;
  if (e.finished && !bar.finished) {
    ++done_files_;
    finished_bytes_ += e.total;
  }
  bar.finished = e.finished;
  if (e.finished || now - last_draw_ > std::chrono::milliseconds(100)) {
    last_draw_ = now;
    draw();
  }
}

void ProgressBars::draw() {
  // Move up over the previous frame, clear it, then draw the total and the files in flight.
  if (lines_drawn_) std::fprintf(stderr, "\x1b[%zuA\r\x1b[J", lines_drawn_);
  auto now = std::chrono::steady_clock::now();
  std::size_t lines = 0;
  if (total_files_ > 1) {
    std::uint64_t done = finished_bytes_;
    for (const auto& [file, bar] : bars_)
      if (!bar.finished) done += bar.done;
    double secs = std::chrono::duration<double>(now - started_).count();
    double rate = secs > 0 ? done / secs : 0;
    std::string eta = rate > 0 && total_bytes_ > done ? std::to_string(static_cast<long>((total_bytes_ - done) / rate)) + "s" : "--";
    std::fprintf(stderr, "Fetching %zu/%zu files  %8s/%-8s %8s/s ETA %s\n", done_files_, total_files_,
                 format_size(static_cast<double>(done)).c_str(), format_size(static_cast<double>(total_bytes_)).c_str(),
                 format_size(rate).c_str(), eta.c_str());
    ++lines;
  }
  for (const auto& [file, bar] : bars_) {
    if (bar.finished && total_files_ > 1) continue;  // only files in flight
    double secs = std::chrono::duration<double>(now - bar.start).count();
    double rate = secs > 0 ? (bar.done - bar.start_bytes) / secs : 0;
    int pct = bar.total ? static_cast<int>(100.0 * bar.done / bar.total) : 0;
    int filled = pct / 5;
    std::string gauge(filled, '#');
    gauge.resize(20, '.');
    std::string eta = "--";
    if (bar.finished) {
      eta = "done";
    } else if (rate > 0 && bar.total > bar.done) {
      eta = std::to_string(static_cast<long>((bar.total - bar.done) / rate)) + "s";
    }
    std::string name = file.size() > 40 ? "..." + file.substr(file.size() - 37) : file;
    std::fprintf(stderr, "\r\x1b[2K%-40s [%s] %3d%% %8s/%-8s %8s/s %s\n", name.c_str(), gauge.c_str(), pct,
                 format_size(static_cast<double>(bar.done)).c_str(), format_size(static_cast<double>(bar.total)).c_str(),
                 format_size(rate).c_str(), eta.c_str());
    ++lines;
  }
  lines_drawn_ = lines;
  std::fflush(stderr);
}

}  // namespace hubcache::cli
