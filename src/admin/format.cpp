// Size and time formatting/parsing shared by ls, gc and the filters. Written by
// hand to match Python huggingface_hub's strings exactly ("970.7M", "3 days ago").
#include <cctype>
#include <cmath>
#include <cstdio>

#include "hubcache/admin.hpp"
#include "hubcache/error.hpp"

namespace hubcache::admin {

std::string format_size(std::uint64_t bytes) {
  static const char* kUnits[] = {"", "K", "M", "G", "T", "P", "E", "Z"};
  double n = static_cast<double>(bytes);
  char buf[32];
  for (const char* unit : kUnits) {
    if (n < 1000.0) {
      std::snprintf(buf, sizeof buf, "%.1f%s", n, unit);
      return buf;
    }
    n /= 1000.0;
  }
  std::snprintf(buf, sizeof buf, "%.1fY", n);
  return buf;
}

std::string format_timesince(TimePoint t, TimePoint now) {
  double delta = std::chrono::duration<double>(now - t).count();
  if (delta < 20) return "a few seconds ago";
  struct Chunk {
    const char* label;
    double divider;
    double max;  // < 0: no limit
  };
  static const Chunk kChunks[] = {{"second", 1, 60},        {"minute", 60, 60},     {"hour", 3600, 24},
                                  {"day", 86400, 6},        {"week", 86400 * 7, 6}, {"month", 86400 * 30, 11},
                                  {"year", 86400 * 365, -1}};
  double value = 0;
  const char* label = "year";
  for (const auto& c : kChunks) {
    value = std::nearbyint(delta / c.divider);  // Python's round(): ties to even
    label = c.label;
    if (c.max >= 0 && value <= c.max) break;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f %s%s ago", value, label, value > 1 ? "s" : "");
  return buf;
}

namespace {
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
// Splits "1.5gb" into 1.5 and "gb"; false when the number part is missing or malformed.
bool split_number(const std::string& text, double& value, std::string& unit) {
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  std::string num = text.substr(0, i);
  if (num.find('.') != num.rfind('.')) return false;
  try {
    value = std::stod(num);
  } catch (...) {
    return false;
  }
  unit = lower(text.substr(i));
  return true;
}
}  // namespace

std::uint64_t parse_size(const std::string& text) {
  double value = 0;
  std::string unit;
  if (split_number(text, value, unit)) {
    double mult = -1;
    if (unit.empty() || unit == "b")
      mult = 1;
    else if (unit == "k" || unit == "kb")
      mult = 1e3;
    else if (unit == "m" || unit == "mb")
      mult = 1e6;
    else if (unit == "g" || unit == "gb")
      mult = 1e9;
    else if (unit == "t" || unit == "tb")
      mult = 1e12;
    else if (unit == "p" || unit == "pb")
      mult = 1e15;
    if (mult > 0) return static_cast<std::uint64_t>(value * mult);
  }
  throw Error(ErrorCode::invalid_argument, "Invalid size '" + text +
                                               "': expected a number with an optional unit k, m, g, t or p (powers of "
                                               "1000), e.g. 50G or 1.5gb.");
}

std::chrono::seconds parse_duration(const std::string& text) {
  double value = 0;
  std::string unit;
  if (split_number(text, value, unit)) {
    double mult = -1;
    if (unit == "s")
      mult = 1;
    else if (unit == "m" || unit == "min")
      mult = 60;
    else if (unit == "h")
      mult = 3600;
    else if (unit == "d")
      mult = 86400;
    else if (unit == "w")
      mult = 86400 * 7;
    else if (unit == "mo")
      mult = 86400 * 30;
    else if (unit == "y")
      mult = 86400 * 365;
    if (mult > 0) return std::chrono::seconds(static_cast<std::int64_t>(value * mult));
  }
  throw Error(ErrorCode::invalid_argument,
              "Invalid duration '" + text + "': expected a number and a unit s, m, h, d, w, mo or y, e.g. 30d.");
}

}  // namespace hubcache::admin
