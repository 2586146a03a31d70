// Offline lookups through the library against caches in every shape that exists.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "hubcache/hubcache.hpp"
#include "store/repo_cache.hpp"
#include "support/fixtures.hpp"
#include "support/test_support.hpp"

using namespace hubcache;
using namespace hubcache::test;

namespace {
Options at(const TempDir& dir, std::string revision = "main") {
  Options o;
  o.cache_dir = dir.path();
  o.revision = std::move(revision);
  o.offline = true;
  return o;
}
}  // namespace

TEST(Store, SeedCacheResolvesEveryFile) {
  TempDir dir;
  build_seed_cache(dir.path());
  auto o = at(dir);
  for (const char* f : {"corner_model.onnx", "info.txt", "README.md", "writing_type_v1.onnx"}) {
    EXPECT_TRUE(is_cached(kSeedRepo, f, o)) << f;
    auto p = fetch(kSeedRepo, f, o);
    EXPECT_EQ(p, dir.path() / "models--xiaoyao9184--image-faulty/snapshots" / kSeedCommit / f);
    EXPECT_EQ(read_file(p), std::string("content of ") + f);
  }
  EXPECT_FALSE(is_cached(kSeedRepo, "missing.onnx", o));
  EXPECT_EQ(*snapshot_path(kSeedRepo, o), dir.path() / "models--xiaoyao9184--image-faulty/snapshots" / kSeedCommit);
}

TEST(Store, ThreeAnswersLikeTryToLoadFromCache) {
  TempDir dir;
  CacheBuilder b(dir.path(), "org/m");
  auto c = fake_commit(1);
  b.add_file(c, "config.json", "{}");
  b.set_ref("main", c);
  b.add_no_exist(c, "optional.json");
  auto o = at(dir);
  auto hit = lookup("org/m", "config.json", o);
  EXPECT_EQ(hit.status, CacheLookup::Status::cached);
  EXPECT_EQ(hit.commit, c);
  auto gone = lookup("org/m", "optional.json", o);
  EXPECT_EQ(gone.status, CacheLookup::Status::missing_upstream);
  EXPECT_EQ(lookup("org/m", "other.json", o).status, CacheLookup::Status::unknown);
  EXPECT_EQ(lookup("org/m", "config.json", at(dir, "dev")).status, CacheLookup::Status::unknown);
  try {
    fetch("org/m", "optional.json", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::entry_not_found);
  }
}

TEST(Store, PathNeedsAKnownCommitAndDoesNoWrites) {
  TempDir dir;
  auto root = dir.path() / "cache";
  auto o = at(dir);
  o.cache_dir = root;
  EXPECT_FALSE(path("org/m", "a.bin", o));
  auto c = fake_commit(2);
  o.revision = c;
  EXPECT_EQ(*path("org/m", "sub/a.bin", o), root / "models--org--m/snapshots" / c / "sub/a.bin");
  EXPECT_FALSE(std::filesystem::exists(root)) << "path() must not create anything";
  EXPECT_EQ(cache_root(o), root);
  EXPECT_TRUE(std::filesystem::is_directory(root)) << "cache_root() creates the root";
}

TEST(Store, EveryLinkStyleAndRefShape) {
  TempDir dir;
  CacheBuilder b(dir.path(), "org/m");
  auto c1 = fake_commit(1), c2 = fake_commit(2);
  b.add_file(c1, "rel.txt", "r");
  b.add_file(c1, "onnx/deep/abs.onnx", "a", true, CacheBuilder::LinkStyle::absolute);
  b.add_file(c1, "copy.txt", "c", false, CacheBuilder::LinkStyle::real_file);
  b.add_file(c1, "shared.safetensors", "s", true, CacheBuilder::LinkStyle::shared_store);
  b.set_ref("main", c1);
  b.add_file(c2, "pr.txt", "p");
  b.set_ref("refs/pr/1", c2);
  write_file(b.repo_dir() / "refs/v1", c1 + "\n");  // another tool's trailing newline
  write_file(b.repo_dir() / "blobs" / "deadbeef.1234abcd.incomplete", "partial");
  write_file(b.repo_dir() / "trees" / (c1 + ".json"), "{\"format_version\":1,\"files\":{}}");
  auto o = at(dir);
  for (const char* f : {"rel.txt", "onnx/deep/abs.onnx", "copy.txt", "shared.safetensors"})
    EXPECT_TRUE(is_cached("org/m", f, o)) << f;
  EXPECT_EQ(read_file(fetch("org/m", "shared.safetensors", o)), "s");
  EXPECT_TRUE(is_cached("org/m", "pr.txt", at(dir, "refs/pr/1")));
  EXPECT_FALSE(is_cached("org/m", "pr.txt", o));
  EXPECT_TRUE(is_cached("org/m", "rel.txt", at(dir, "v1")));
  EXPECT_TRUE(is_cached("org/m", "pr.txt", at(dir, c2)));
}

TEST(Store, DanglingLinksAndDirectoriesAreNotCached) {
  TempDir dir;
  CacheBuilder b(dir.path(), "org/m");
  auto c = fake_commit(3);
  auto etag = b.add_file(c, "gone.bin", "x");
  b.add_file(c, "dir/file.txt", "y");
  b.set_ref("main", c);
  std::filesystem::remove(b.repo_dir() / "blobs" / etag);
  auto o = at(dir);
  EXPECT_FALSE(is_cached("org/m", "gone.bin", o));
  EXPECT_FALSE(is_cached("org/m", "dir", o));
  EXPECT_TRUE(is_cached("org/m", "dir/file.txt", o));
  try {
    fetch("org/m", "gone.bin", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_cached);
    std::string msg = e.what();
    EXPECT_NE(msg.find("gone.bin"), std::string::npos);
    EXPECT_NE(msg.find("org/m"), std::string::npos);
    EXPECT_NE(msg.find("main"), std::string::npos);
  }
}

TEST(Store, EscapingNamesAreRefusedBeforeAnyIo) {
  TempDir dir;
  auto o = at(dir);
  for (const char* bad : {"../../etc/passwd", "/etc/passwd", "a\\..\\b"}) {
    try {
      is_cached("org/m", bad, o);
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    }
  }
  EXPECT_THROW(is_cached("../evil", "a", o), Error);
  EXPECT_THROW(is_cached("org/m", "a", at(dir, "../x")), Error);
}

TEST(Store, DatasetsAndSpacesUseTheirFolders) {
  TempDir dir;
  auto c = fake_commit(4);
  CacheBuilder d(dir.path(), "google/fleurs", RepoType::dataset);
  d.add_file(c, "data/a b.json", "[]");
  d.set_ref("main", c);
  auto o = at(dir);
  EXPECT_FALSE(is_cached("google/fleurs", "data/a b.json", o));
  o.repo_type = RepoType::dataset;
  EXPECT_EQ(fetch("google/fleurs", "data/a b.json", o),
            dir.path() / "datasets--google--fleurs/snapshots" / c / "data/a b.json");
}

TEST(Store, ReadOnlyCacheStillServesLookups) {
  TempDir dir;
  build_seed_cache(dir.path());
  auto repo = dir.path() / "models--xiaoyao9184--image-faulty";
  for (auto& e : std::filesystem::recursive_directory_iterator(dir.path()))
    if (e.is_directory() && !e.is_symlink()) ::chmod(e.path().c_str(), 0555);
  ::chmod(dir.path().c_str(), 0555);
  auto o = at(dir);
  EXPECT_TRUE(is_cached(kSeedRepo, "info.txt", o));
  EXPECT_EQ(fetch(kSeedRepo, "info.txt", o), repo / "snapshots" / kSeedCommit / "info.txt");
}

TEST(Store, FlatLayout) {
  TempDir dir;
  Options o;
  o.layout = Layout::flat;
  o.cache_dir = dir.path();
  o.offline = true;
  EXPECT_EQ(*path("facebook/sam2.1-hiera-tiny", "sam2.1_hiera_tiny.encoder.onnx", o),
            dir.path() / "facebook/sam2.1-hiera-tiny/sam2.1_hiera_tiny.encoder.onnx");
  EXPECT_FALSE(is_cached("facebook/sam2.1-hiera-tiny", "onnx/encoder.onnx", o));
  write_file(dir.path() / "facebook/sam2.1-hiera-tiny/onnx/encoder.onnx", "w");
  EXPECT_TRUE(is_cached("facebook/sam2.1-hiera-tiny", "onnx/encoder.onnx", o));
  EXPECT_EQ(read_file(fetch("facebook/sam2.1-hiera-tiny", "onnx/encoder.onnx", o)), "w");
  EXPECT_THROW(fetch("facebook/sam2.1-hiera-tiny", "x.onnx", o), Error);
}

TEST(Store, RefWritesAreExactAndAtomic) {
  TempDir dir;
  store::RepoCache cache(dir.path(), "org/m", RepoType::model);
  auto c = fake_commit(5);
  cache.write_ref("refs/pr/7", c);
  EXPECT_EQ(read_file(cache.repo_dir() / "refs/refs/pr/7"), c);
  EXPECT_TRUE(std::filesystem::is_directory(cache.snapshot_dir(c)));
  EXPECT_EQ(*cache.read_ref("refs/pr/7"), c);
  EXPECT_THROW(cache.write_ref("main", "not-a-commit"), Error);
  std::size_t entries = 0;
  for (auto& e : std::filesystem::directory_iterator(cache.repo_dir() / "refs/refs/pr")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "no temp file left behind";
}

TEST(Store, LinkPointerMakesRelativeLinksAndLocksStay) {
  TempDir dir;
  store::RepoCache cache(dir.path(), "org/m", RepoType::model);
  auto c = fake_commit(6);
  write_file(cache.blob_path("abc"), "data");
  auto ptr = cache.pointer_path(c, "onnx/model.onnx");
  cache.link_pointer(cache.blob_path("abc"), ptr, true);
  EXPECT_EQ(std::filesystem::read_symlink(ptr).string(), "../../../blobs/abc");
  EXPECT_EQ(read_file(ptr), "data");
  auto lock_path = cache.lock_path("abc");
  {
    store::FileLock lock(lock_path);
    EXPECT_TRUE(lock.held());
    EXPECT_TRUE(store::FileLock::is_locked(lock_path));
  }
  EXPECT_FALSE(store::FileLock::is_locked(lock_path));
  ASSERT_TRUE(std::filesystem::exists(lock_path)) << "lock files are never deleted";
  struct stat st;
  ::stat(lock_path.c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0664u);
  EXPECT_EQ(lock_path, dir.path() / ".locks/models--org--m/abc.lock");
}

TEST(FileLock, TryOnceNeverWaits) {
  TempDir dir;
  const fs::path lock_path = dir.path() / ".locks/models--org--m/abc.lock";
  {
    store::FileLock first(lock_path);
    ASSERT_TRUE(first.held());
    store::FileLock second(lock_path, store::FileLock::TryOnce{});
    EXPECT_TRUE(second.busy()) << "held by another descriptor: busy at once, no wait";
    EXPECT_FALSE(second.held());
  }
  store::FileLock third(lock_path, store::FileLock::TryOnce{});
  EXPECT_TRUE(third.held());
  EXPECT_FALSE(third.busy());
  EXPECT_TRUE(store::FileLock::is_locked(lock_path));
}
