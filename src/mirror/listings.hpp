// Upstream answers kept per commit (tree, repo info, paths-info): immutable once the
// commit is fixed, so they are kept until memory runs short (least recently used first).
#pragma once

#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace hubcache::mirror {

class ListingCache {
 public:
  explicit ListingCache(std::size_t max_bytes);
  std::shared_ptr<const std::string> get(const std::string& key);
  void put(const std::string& key, std::string value);
  std::size_t bytes() const;

 private:
  const std::size_t max_bytes_;
  mutable std::mutex mutex_;
  std::list<std::string> order_;  // most recent first
  struct Entry {
    std::shared_ptr<const std::string> value;
    std::list<std::string>::iterator pos;
  };
  std::map<std::string, Entry> entries_;
  std::size_t bytes_ = 0;
};

}  // namespace hubcache::mirror
