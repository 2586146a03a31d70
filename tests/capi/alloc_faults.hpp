// Allocation failure injection for capi_tests: this binary replaces the global operator
// new (alloc_faults.cpp, its own translation unit so the compiler cannot pair inlined
// new and delete calls with the replacement's malloc and free).
#pragma once

namespace hubcache::test {

// On this thread, the next `n` allocations succeed and the one after throws
// std::bad_alloc (once). Negative: no failure.
void fail_allocation_after(long n);
// True when the failure set up by fail_allocation_after has happened; also cancels it.
bool allocation_failure_happened();

}  // namespace hubcache::test
