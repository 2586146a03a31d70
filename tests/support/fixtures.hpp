// Fixture caches shared by several tests.
#pragma once

#include <string>

#include "support/test_support.hpp"

namespace hubcache::test {

// The tree of seed 000: models--xiaoyao9184--image-faulty with refs/main and one
// snapshot, blob names exactly as listed there (contents are stand-ins).
inline constexpr const char* kSeedRepo = "xiaoyao9184/image-faulty";
inline constexpr const char* kSeedCommit = "3bc9ba7f84a5d8359a34ef3a7d5e9f6bec349d91";
void build_seed_cache(const fs::path& root);

}  // namespace hubcache::test
