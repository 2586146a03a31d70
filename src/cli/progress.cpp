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

ProgressBars::ProgressBars(bool quiet)
    : enabled_(!quiet && ::isatty(STDERR_FILENO) && !Settings::get().disable_progress_bars) {}

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
  bar.finished = e.finished;
  if (e.finished || now - last_draw_ > std::chrono::milliseconds(100)) {
    last_draw_ = now;
    draw();
  }
}

void ProgressBars::draw() {
  // Move up over the previous frame, then redraw every bar.
  if (lines_drawn_) std::fprintf(stderr, "\x1b[%zuA", lines_drawn_);
  auto now = std::chrono::steady_clock::now();
  for (const auto& [file, bar] : bars_) {
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
  }
  lines_drawn_ = bars_.size();
  std::fflush(stderr);
}

}  // namespace hubcache::cli
