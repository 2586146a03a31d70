#include "mirror/metrics.hpp"

#include <cmath>
#include <cstdio>

namespace hubcache::mirror {

namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string label_text(const Labels& labels, const std::string& extra_name = "", const std::string& extra_value = "") {
  std::string out;
  auto one = [&](const std::string& k, const std::string& v) {
    out += out.empty() ? "{" : ",";
    out += k + "=\"" + Metrics::escape(v) + "\"";
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (!extra_name.empty()) one(extra_name, extra_value);
  if (!out.empty()) out += "}";
  return out;
}

std::string help_text(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string Metrics::escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void Metrics::declare(const std::string& name, const std::string& help, Type type, std::vector<double> buckets) {
  std::lock_guard lock(mutex_);
  if (families_.count(name)) return;
  order_.push_back(name);
  Family& f = families_[name];
  f.help = help;
  f.type = type;
  f.buckets = std::move(buckets);
}

void Metrics::declare_gauge_fn(const std::string& name, const std::string& help, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  if (families_.count(name)) return;
  order_.push_back(name);
  Family& f = families_[name];
  f.help = help;
  f.type = Type::gauge;
  f.read = std::move(read);
}

void Metrics::add(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type == Type::histogram) return;
  it->second.series[labels] += value;
}

void Metrics::set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != Type::gauge) return;
  it->second.series[labels] = value;
}

void Metrics::observe(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != Type::histogram) return;
  Family& f = it->second;
  Histogram& h = f.histograms[labels];
  if (h.counts.empty()) h.counts.assign(f.buckets.size(), 0);
  for (std::size_t i = 0; i < f.buckets.size(); ++i)
    if (value <= f.buckets[i]) {
      ++h.counts[i];
      break;
    }
  ++h.count;
  h.sum += value;
}

double Metrics::value(const std::string& name, const Labels& labels) const {
  std::function<double()> read;
  {
    std::lock_guard lock(mutex_);
    auto it = families_.find(name);
    if (it == families_.end()) return 0;
    if (!it->second.read) {
      auto s = it->second.series.find(labels);
      return s == it->second.series.end() ? 0 : s->second;
    }
    read = it->second.read;
  }
  return read();
}

std::string Metrics::render() const {
  // Gauges read at render time are read outside the lock: they may take other locks.
  std::vector<std::string> order;
  std::map<std::string, std::function<double()>> reads;
  {
    std::lock_guard lock(mutex_);
    order = order_;
    for (const auto& [name, f] : families_)
      if (f.read) reads[name] = f.read;
  }
  std::map<std::string, double> read_values;
  for (const auto& [name, read] : reads) read_values[name] = read();

  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& name : order) {
    const Family& f = families_.at(name);
    out += "# HELP " + name + " " + help_text(f.help) + "\n";
    out += "# TYPE " + name + " " +
           (f.type == Type::counter ? "counter"
            : f.type == Type::gauge ? "gauge"
                                    : "histogram") +
           "\n";
    if (f.read) {
      out += name + " " + number(read_values[name]) + "\n";
      continue;
    }
    if (f.type == Type::histogram) {
      for (const auto& [labels, h] : f.histograms) {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < f.buckets.size(); ++i) {
          cumulative += h.counts[i];
          out += name + "_bucket" + label_text(labels, "le", number(f.buckets[i])) + " " + std::to_string(cumulative) +
                 "\n";
        }
        out += name + "_bucket" + label_text(labels, "le", "+Inf") + " " + std::to_string(h.count) + "\n";
        out += name + "_sum" + label_text(labels) + " " + number(h.sum) + "\n";
        out += name + "_count" + label_text(labels) + " " + std::to_string(h.count) + "\n";
      }
      continue;
    }
    for (const auto& [labels, v] : f.series) out += name + label_text(labels) + " " + number(v) + "\n";
  }
  return out;
}

}  // namespace hubcache::mirror
