#include "alloc_faults.hpp"

#include <cstdlib>
#include <new>

namespace {
// The number of operator new calls on this thread that succeed before one throws; -1: none.
thread_local long allocations_before_failure = -1;
}  // namespace

namespace hubcache::test {

void fail_allocation_after(long n) { allocations_before_failure = n; }

bool allocation_failure_happened() {
  const bool happened = allocations_before_failure < 0;
  allocations_before_failure = -1;
  return happened;
}

}  // namespace hubcache::test

void* operator new(std::size_t n) {
  if (allocations_before_failure >= 0 && allocations_before_failure-- == 0) throw std::bad_alloc();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
