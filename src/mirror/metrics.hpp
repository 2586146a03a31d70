// A small metrics registry rendered in the Prometheus text exposition format
// (version 0.0.4), for GET /metrics. Counters and gauges with labels, a histogram,
// and gauges read at render time. Thread-safe; one mutex, since requests update a
// few counters each and nothing here sits on a hot byte path.
//
// Written by hand: Debian packages no Prometheus client for C++ (prometheus-cpp is
// not in bookworm), and the text format is a few lines.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace hubcache::mirror {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  enum class Type { counter, gauge, histogram };

  // Declares a metric family. Names follow Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*).
  // Histograms take their upper bounds (seconds, ascending; +Inf is implied).
  void declare(const std::string& name, const std::string& help, Type type, std::vector<double> buckets = {});
  // A gauge whose value is read when /metrics is rendered.
  void declare_gauge_fn(const std::string& name, const std::string& help, std::function<double()> read);

  void add(const std::string& name, const Labels& labels, double value = 1);  // counter or gauge
  void set(const std::string& name, const Labels& labels, double value);      // gauge
  void observe(const std::string& name, const Labels& labels, double value);  // histogram

  // Current value of a counter or gauge series (0 when unknown): for tests and logs.
  double value(const std::string& name, const Labels& labels = {}) const;

  // The text format: # HELP and # TYPE per family, one line per series, families in
  // declaration order, series in label order.
  std::string render() const;

  // Label values escaped as the format requires (backslash, double quote, newline).
  static std::string escape(const std::string& value);

 private:
  struct Histogram {
    std::vector<std::uint64_t> counts;  // per bucket, not cumulative
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    std::string help;
    Type type = Type::counter;
    std::vector<double> buckets;
    std::map<Labels, double> series;
    std::map<Labels, Histogram> histograms;
    std::function<double()> read;
  };
  mutable std::mutex mutex_;
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

}  // namespace hubcache::mirror
