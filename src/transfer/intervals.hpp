// A set of byte ranges [first, end), kept merged: which parts of a download are on
// disk. Pure (no I/O), shared by the engine and the resume journal.
#pragma once

#include <cstdint>
#include <iterator>
#include <map>
#include <utility>
#include <vector>

namespace hubcache::transfer {

class IntervalSet {
 public:
  using Range = std::pair<std::uint64_t, std::uint64_t>;  // [first, end)

  // Adds [first, end), merging with touching or overlapping ranges.
  void add(std::uint64_t first, std::uint64_t end) {
    if (first >= end) return;
    auto it = ranges_.upper_bound(first);
    if (it != ranges_.begin()) {
      auto prev = std::prev(it);
      if (prev->second >= first) {
        if (prev->second >= end) return;  // already covered
        first = prev->first;
        it = prev;
      }
    }
    while (it != ranges_.end() && it->first <= end) {
      if (it->second > end) end = it->second;
      total_ -= it->second - it->first;
      it = ranges_.erase(it);
    }
    ranges_.emplace(first, end);
    total_ += end - first;
  }

  void clear() {
    ranges_.clear();
    total_ = 0;
  }
  bool empty() const { return ranges_.empty(); }
  // Bytes covered.
  std::uint64_t total() const { return total_; }
  // End of the range that starts at 0 (0 when byte 0 is missing).
  std::uint64_t prefix_end() const {
    auto it = ranges_.begin();
    return it != ranges_.end() && it->first == 0 ? it->second : 0;
  }
  bool covers(std::uint64_t first, std::uint64_t end) const {
    if (first >= end) return true;
    auto it = ranges_.upper_bound(first);
    if (it == ranges_.begin()) return false;
    --it;
    return it->first <= first && it->second >= end;
  }
  // The parts of [0, size) not covered, in order.
  std::vector<Range> gaps(std::uint64_t size) const {
    std::vector<Range> out;
    std::uint64_t at = 0;
    for (const auto& [a, b] : ranges_) {
      if (a >= size) break;
      if (a > at) out.emplace_back(at, a);
      if (b > at) at = b;
    }
    if (at < size) out.emplace_back(at, size);
    return out;
  }
  std::vector<Range> ranges() const { return {ranges_.begin(), ranges_.end()}; }

 private:
  std::map<std::uint64_t, std::uint64_t> ranges_;
  std::uint64_t total_ = 0;
};

}  // namespace hubcache::transfer
