#include "mirror/listings.hpp"

namespace hubcache::mirror {

ListingCache::ListingCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

std::shared_ptr<const std::string> ListingCache::get(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second.pos);
  return it->second.value;
}

void ListingCache::put(const std::string& key, std::string value) {
  std::lock_guard lock(mutex_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= it->second.value->size() + key.size();
    order_.erase(it->second.pos);
    entries_.erase(it);
  }
  const std::size_t cost = value.size() + key.size();
  if (cost > max_bytes_) return;  // larger than the whole cache: not kept
  order_.push_front(key);
  entries_[key] = Entry{std::make_shared<const std::string>(std::move(value)), order_.begin()};
  bytes_ += cost;
  while (bytes_ > max_bytes_ && !order_.empty()) {
    auto last = entries_.find(order_.back());
    bytes_ -= last->second.value->size() + last->first.size();
    entries_.erase(last);
    order_.pop_back();
  }
}

std::size_t ListingCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace hubcache::mirror
