// The cache scanner: Python scan_cache_dir rules over real files and symlinks.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "hubcache/admin.hpp"
#include "hubcache/error.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

namespace hubcache::test {
namespace {

using namespace hubcache::admin;

bool has_warning(const ScanReport& r, const std::string& needle) {
  for (const auto& w : r.warnings)
    if (w.find(needle) != std::string::npos) return true;
  return false;
}

TEST(AdminScan, RevisionsSharingBlobsAreCountedOnce) {
  TempDir tmp;
  CacheBuilder b(tmp.path(), "org/model");
  auto c1 = fake_commit(1), c2 = fake_commit(2);
  std::string weights(5000, 'w');
  b.add_file(c1, "config.json", "one");
  b.add_file(c1, "model.bin", weights, true);
  b.add_file(c2, "config.json", "three");
  b.add_file(c2, "model.bin", weights, true);
  b.add_file(c2, "sub/dir/tok.json", "tok");
  b.set_ref("main", c2);
  b.set_ref("refs/pr/1", c2);

  auto report = scan_cache(tmp.path());
  ASSERT_EQ(report.repos.size(), 1u);
  EXPECT_TRUE(report.warnings.empty());
  const auto& repo = report.repos[0];
  EXPECT_EQ(repo.cache_id(), "model/org/model");
  ASSERT_EQ(repo.revisions.size(), 2u);
  EXPECT_EQ(repo.nb_files, 4u);  // config x2, weights once, tok
  EXPECT_EQ(repo.size, 3u + 5000u + 5u + 3u);
  EXPECT_EQ(report.size, repo.size);
  EXPECT_EQ(report.revision_count(), 2u);
  const CachedRevision* r1 = repo.revisions[0].commit == c1 ? &repo.revisions[0] : &repo.revisions[1];
  const CachedRevision* r2 = r1 == &repo.revisions[0] ? &repo.revisions[1] : &repo.revisions[0];
  EXPECT_TRUE(r1->refs.empty());
  EXPECT_EQ(r2->refs, (std::vector<std::string>{"main", "refs/pr/1"}));
  EXPECT_EQ(r1->size, 5003u);
  EXPECT_EQ(r2->size, 5008u);
  ASSERT_EQ(r2->files.size(), 3u);
  EXPECT_EQ(r2->files[2].name, "sub/dir/tok.json");
  EXPECT_EQ(r2->files[2].repo_blob, b.repo_dir() / "blobs" / r2->files[2].repo_blob.filename());
  EXPECT_EQ(repo.refs.at("refs/pr/1"), c2);
}

TEST(AdminScan, CorruptedReposBecomeWarningsAndAreLeftOut) {
  TempDir tmp;
  CacheBuilder good(tmp.path(), "org/good");
  good.add_file(fake_commit(1), "a.txt", "a");
  good.set_ref("main", fake_commit(1));

  CacheBuilder dangling(tmp.path(), "org/dangling");
  dangling.add_file(fake_commit(2), "gone.txt", "gone");
  fs::remove(dangling.repo_dir() / "blobs" / util::git_blob_sha1_hex("gone"));

  CacheBuilder badref(tmp.path(), "org/badref");
  badref.add_file(fake_commit(3), "a.txt", "a");
  badref.set_ref("main", fake_commit(4));

  CacheBuilder stray(tmp.path(), "org/stray");
  write_file(stray.repo_dir() / "snapshots" / "README", "not a revision");

  fs::create_directories(tmp.path() / "kernels--org--k" / "snapshots");
  write_file(tmp.path() / "CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n");
  fs::create_directories(tmp.path() / ".locks" / "models--org--good");

  auto report = scan_cache(tmp.path());
  ASSERT_EQ(report.repos.size(), 1u);
  EXPECT_EQ(report.repos[0].repo_id, "org/good");
  EXPECT_EQ(report.warnings.size(), 4u);
  EXPECT_TRUE(has_warning(report, "Blob missing (broken symlink)"));
  EXPECT_TRUE(has_warning(report, "Reference(s) refer to missing commit hashes: main -> " + fake_commit(4)));
  EXPECT_TRUE(has_warning(report, "Found a file"));
  EXPECT_TRUE(has_warning(report, "kernels--org--k"));
}

TEST(AdminScan, SharedStoreChainIsFollowedAndStoreIsNotARepo) {
  TempDir tmp;
  CacheBuilder b(tmp.path(), "org/xet");
  std::string content(2048, 'x');
  auto etag = b.add_file(fake_commit(1), "w.safetensors", content, true, CacheBuilder::LinkStyle::shared_store);
  b.set_ref("main", fake_commit(1));
  auto report = scan_cache(tmp.path());
  EXPECT_TRUE(report.warnings.empty()) << report.warnings[0];
  ASSERT_EQ(report.repos.size(), 1u);
  const auto& f = report.repos[0].revisions[0].files[0];
  EXPECT_TRUE(f.repo_blob_is_link);
  EXPECT_EQ(f.repo_blob, b.repo_dir() / "blobs" / etag);
  EXPECT_EQ(f.blob_path, tmp.path() / "blobs" / etag.substr(0, 2) / etag);
  EXPECT_EQ(f.size, 2048u);
}

TEST(AdminScan, RealFilesResolveToThemselves) {
  TempDir tmp;
  CacheBuilder b(tmp.path(), "org/copy", RepoType::dataset);
  b.add_file(fake_commit(1), "data.csv", "a,b\n", false, CacheBuilder::LinkStyle::real_file);
  auto report = scan_cache(tmp.path());
  ASSERT_EQ(report.repos.size(), 1u);
  EXPECT_EQ(report.repos[0].cache_id(), "dataset/org/copy");
  const auto& f = report.repos[0].revisions[0].files[0];
  EXPECT_EQ(f.repo_blob, f.file_path);
  EXPECT_EQ(f.size, 4u);
}

TEST(AdminScan, IncompleteFilesBothNamingSchemes) {
  TempDir tmp;
  CacheBuilder b(tmp.path(), "org/m");
  std::string etag(64, 'a');
  write_file(b.repo_dir() / "blobs" / (etag + ".0123abcd.incomplete"), "12345");
  write_file(b.repo_dir() / "blobs" / (etag + ".incomplete"), "123");
  auto report = scan_cache(tmp.path());
  ASSERT_EQ(report.incomplete.size(), 2u);
  EXPECT_EQ(report.incomplete_size, 8u);
  for (const auto& inc : report.incomplete) {
    EXPECT_EQ(inc.etag, etag);
    EXPECT_EQ(inc.lock_path, tmp.path() / ".locks" / "models--org--m" / (etag + ".lock"));
  }
}

// The engine sizes a temp file up front (sparse): a partial counts what is on disk.
TEST(AdminScan, APresizedPartialCountsItsAllocatedBytesNotItsApparentSize) {
  TempDir tmp;
  CacheBuilder b(tmp.path(), "org/m");
  const auto partial = b.repo_dir() / "blobs" / (std::string(64, 'b') + ".89abcdef.incomplete");
  fs::create_directories(partial.parent_path());
  write_file(partial, std::string(256 * 1024, 'x'));
  fs::resize_file(partial, 64u << 20);
  struct stat st {};
  ASSERT_EQ(::stat(partial.c_str(), &st), 0);
  if (static_cast<std::uint64_t>(st.st_blocks) * 512 >= (64u << 20))
    GTEST_SKIP() << "this file system has no sparse files";
  auto report = scan_cache(tmp.path());
  ASSERT_EQ(report.incomplete.size(), 1u);
  EXPECT_GE(report.incomplete[0].size, 256u * 1024);
  EXPECT_LT(report.incomplete[0].size, 4u << 20) << "not the 64 MiB apparent size";
  EXPECT_EQ(report.incomplete_size, report.incomplete[0].size);
}

TEST(AdminScan, MissingRootOrFileRoot) {
  TempDir tmp;
  try {
    scan_cache(tmp.path() / "nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_cached);
  }
  write_file(tmp.path() / "file", "x");
  try {
    scan_cache(tmp.path() / "file");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

TEST(AdminFormat, SizesTimesAndParsing) {
  EXPECT_EQ(format_size(970'700'000), "970.7M");
  EXPECT_EQ(format_size(3'400'000'000), "3.4G");
  EXPECT_EQ(format_size(8'800), "8.8K");
  EXPECT_EQ(format_size(512), "512.0");
  auto now = Clock::now();
  EXPECT_EQ(format_timesince(now - std::chrono::seconds(5), now), "a few seconds ago");
  EXPECT_EQ(format_timesince(now - std::chrono::seconds(45), now), "45 seconds ago");
  EXPECT_EQ(format_timesince(now - std::chrono::seconds(60), now), "60 seconds ago");  // as Python
  EXPECT_EQ(format_timesince(now - std::chrono::seconds(100), now), "2 minutes ago");
  EXPECT_EQ(format_timesince(now - std::chrono::hours(72), now), "3 days ago");
  EXPECT_EQ(format_timesince(now - std::chrono::hours(24 * 14), now), "2 weeks ago");
  EXPECT_EQ(format_timesince(now - std::chrono::hours(24 * 800), now), "2 years ago");
  EXPECT_EQ(parse_size("50G"), 50'000'000'000u);
  EXPECT_EQ(parse_size("1.5gb"), 1'500'000'000u);
  EXPECT_EQ(parse_size("123"), 123u);
  EXPECT_EQ(parse_size("10k"), 10'000u);
  EXPECT_EQ(parse_duration("30d"), std::chrono::seconds(30 * 86400));
  EXPECT_EQ(parse_duration("2w"), std::chrono::seconds(14 * 86400));
  EXPECT_EQ(parse_duration("3mo"), std::chrono::seconds(90 * 86400));
  EXPECT_EQ(parse_duration("10m"), std::chrono::seconds(600));
  EXPECT_THROW(parse_size("G"), Error);
  EXPECT_THROW(parse_size("5x"), Error);
  EXPECT_THROW(parse_duration("5"), Error);
  EXPECT_THROW(parse_duration("1.2.3d"), Error);
}

}  // namespace
}  // namespace hubcache::test
