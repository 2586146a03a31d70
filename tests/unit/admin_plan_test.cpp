// Delete plans (rm, prune, gc), their execution, and offline verify.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "hubcache/admin.hpp"
#include "hubcache/error.hpp"
#include "store/repo_cache.hpp"
#include "support/test_support.hpp"
#include "util/hash.hpp"

namespace hubcache::test {
namespace {

using namespace hubcache::admin;

// Sets a file's atime and mtime to `ago` seconds in the past (not following links).
void set_age(const fs::path& p, int ago) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  timespec t[2] = {{now.tv_sec - ago, 0}, {now.tv_sec - ago, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << p;
}

struct ThreeRevisions {
  TempDir tmp;
  CacheBuilder b{tmp.path(), "org/model"};
  std::string c1 = fake_commit(1), c2 = fake_commit(2), c3 = fake_commit(3);
  std::string shared, old_only, mid_only, new_only;
  ThreeRevisions() {
    shared = b.add_file(c1, "shared.bin", std::string(1000, 's'), true);
    b.add_file(c2, "shared.bin", std::string(1000, 's'), true);
    b.add_file(c3, "shared.bin", std::string(1000, 's'), true);
    old_only = b.add_file(c1, "w.bin", std::string(3000, '1'), true);
    mid_only = b.add_file(c2, "w.bin", std::string(2000, '2'), true);
    new_only = b.add_file(c3, "w.bin", std::string(4000, '3'), true);
    b.set_ref("v1", c1);
    b.set_ref("v2", c2);
    b.set_ref("main", c3);
    set_age(blob(old_only), 3 * 86400);
    set_age(blob(mid_only), 2 * 86400);
    set_age(blob(new_only), 60);
    set_age(blob(shared), 60);
  }
  fs::path blob(const std::string& etag) const { return b.repo_dir() / "blobs" / etag; }
};

TEST(AdminPlan, RmRevisionKeepsBlobsOtherRevisionsUse) {
  ThreeRevisions f;
  auto plan = plan_rm(scan_cache(f.tmp.path()), {f.c1});
  EXPECT_EQ(plan.nb_revisions, 1u);
  EXPECT_EQ(plan.nb_repos, 0u);
  EXPECT_EQ(plan.blobs, std::vector<fs::path>{f.blob(f.old_only)});
  EXPECT_EQ(plan.refs, std::vector<fs::path>{f.b.repo_dir() / "refs" / "v1"});
  EXPECT_EQ(plan.expected_freed, 3000u);
  auto result = plan.execute();
  EXPECT_EQ(result.freed, 3000u);
  EXPECT_FALSE(fs::exists(f.b.repo_dir() / "snapshots" / f.c1));
  EXPECT_FALSE(fs::exists(f.blob(f.old_only)));
  EXPECT_TRUE(fs::exists(f.blob(f.shared)));
  EXPECT_TRUE(fs::exists(f.b.pointer(f.c2, "shared.bin")));
  auto after = scan_cache(f.tmp.path());
  EXPECT_TRUE(after.warnings.empty());
  EXPECT_EQ(after.revision_count(), 2u);
}

TEST(AdminPlan, RmRepoTargetsAndUnknowns) {
  ThreeRevisions f;
  CacheBuilder d(f.tmp.path(), "Org/Data", RepoType::dataset);
  d.add_file(fake_commit(9), "x.csv", "x");
  auto report = scan_cache(f.tmp.path());
  auto plan = plan_rm(report, {"model/ORG/MODEL", "hf://datasets/org/data", "model/org/absent", std::string(40, 'e')});
  EXPECT_EQ(plan.nb_repos, 2u);
  EXPECT_EQ(plan.repos.size(), 2u);
  EXPECT_EQ(plan.warnings.size(), 2u);
  EXPECT_EQ(plan.expected_freed, 1000u + 3000u + 2000u + 4000u + 1u);
  EXPECT_THROW(plan_rm(report, {"gpt2"}), Error);
  // Selecting every revision by hash removes the whole repo.
  auto all = plan_rm(report, {f.c1, f.c2, f.c3});
  EXPECT_EQ(all.nb_repos, 1u);
  all.execute();
  EXPECT_FALSE(fs::exists(f.b.repo_dir()));
  EXPECT_TRUE(fs::exists(d.repo_dir()));
}

TEST(AdminPlan, RmSharedStoreRemovesOnlyTheLink) {
  TempDir tmp;
  CacheBuilder b(tmp.path(), "org/xet");
  std::string content(500, 'x');
  auto etag = b.add_file(fake_commit(1), "a.bin", content, true, CacheBuilder::LinkStyle::shared_store);
  b.add_file(fake_commit(2), "b.txt", "b");
  b.set_ref("main", fake_commit(2));
  auto plan = plan_rm(scan_cache(tmp.path()), {fake_commit(1)});
  ASSERT_EQ(plan.blobs.size(), 1u);
  EXPECT_EQ(plan.expected_freed, 0u);  // the store payload stays
  plan.execute();
  auto store = tmp.path() / "blobs" / etag.substr(0, 2) / etag;
  EXPECT_FALSE(fs::exists(fs::symlink_status(b.repo_dir() / "blobs" / etag)));
  EXPECT_EQ(read_file(store), content);
}

TEST(AdminPlan, PruneSparesLiveDownloads) {
  ThreeRevisions f;
  fs::remove(f.b.repo_dir() / "refs" / "v1");  // c1 becomes detached
  std::string live(64, 'b'), stale(64, 'c');
  auto live_file = f.b.repo_dir() / "blobs" / (live + ".1234abcd.incomplete");
  auto stale_file = f.b.repo_dir() / "blobs" / (stale + ".incomplete");
  write_file(live_file, "part");
  write_file(stale_file, "old");
  // Resume records next to the partials go with them, and only with them.
  auto live_side = live_file.string() + ".resume", stale_side = stale_file.string() + ".resume";
  write_file(live_side, "{}");
  write_file(stale_side, "{}");
  auto lock_path = f.tmp.path() / ".locks" / "models--org--model" / (live + ".lock");
  {
    store::FileLock lock(lock_path);
    auto plan = plan_prune(scan_cache(f.tmp.path()));
    EXPECT_EQ(plan.nb_revisions, 1u);
    EXPECT_EQ(plan.incomplete, std::vector<fs::path>{stale_file});
    EXPECT_EQ(plan.expected_freed, 3000u + 3u);
    ASSERT_EQ(plan.warnings.size(), 1u);
    plan.execute();
    EXPECT_TRUE(fs::exists(live_file));
    EXPECT_TRUE(fs::exists(live_side));
    EXPECT_FALSE(fs::exists(stale_file));
    EXPECT_FALSE(fs::exists(stale_side));
    EXPECT_FALSE(fs::exists(f.blob(f.old_only)));
  }
  auto plan = plan_prune(scan_cache(f.tmp.path()));
  EXPECT_EQ(plan.incomplete, std::vector<fs::path>{live_file});
  plan.execute();
  EXPECT_FALSE(fs::exists(live_file));
  EXPECT_FALSE(fs::exists(live_side));
}

TEST(AdminPlan, ExecuteRechecksLocks) {
  ThreeRevisions f;
  std::string etag(64, 'd');
  auto file = f.b.repo_dir() / "blobs" / (etag + ".incomplete");
  write_file(file, "x");
  auto plan = plan_prune(scan_cache(f.tmp.path()));
  ASSERT_EQ(plan.incomplete.size(), 1u);
  store::FileLock lock(f.tmp.path() / ".locks" / "models--org--model" / (etag + ".lock"));  // a download starts
  auto result = plan.execute();
  EXPECT_TRUE(fs::exists(file));
  EXPECT_EQ(result.warnings.size(), 1u);
}

TEST(AdminPlan, GcBySizeEvictsLeastRecentlyUsedKeepingSharedBlobs) {
  ThreeRevisions f;
  // 10000 bytes in total; the oldest revision (c1) alone frees 3000.
  auto plan = plan_gc(scan_cache(f.tmp.path()), {.max_size = 8000});
  EXPECT_EQ(plan.nb_revisions, 1u);
  EXPECT_EQ(plan.snapshots, std::vector<fs::path>{f.b.repo_dir() / "snapshots" / f.c1});
  plan.execute();
  EXPECT_TRUE(fs::exists(f.blob(f.shared)));
  EXPECT_FALSE(fs::exists(f.blob(f.old_only)));
  EXPECT_TRUE(fs::exists(f.blob(f.mid_only)));
  // Tighter: c2 goes next, the shared blob stays for c3.
  auto next = plan_gc(scan_cache(f.tmp.path()), {.max_size = 5000});
  EXPECT_EQ(next.snapshots, std::vector<fs::path>{f.b.repo_dir() / "snapshots" / f.c2});
  EXPECT_EQ(next.expected_freed, 2000u);
}

TEST(AdminPlan, GcDetachedFirstAndByAge) {
  ThreeRevisions f;
  fs::remove(f.b.repo_dir() / "refs" / "main");  // c3, the newest, becomes detached
  auto plan = plan_gc(scan_cache(f.tmp.path()), {.max_size = 9000});
  EXPECT_EQ(plan.snapshots, std::vector<fs::path>{f.b.repo_dir() / "snapshots" / f.c3});
  auto aged = plan_gc(scan_cache(f.tmp.path()), {.older_than = std::chrono::hours(36)});
  EXPECT_EQ(aged.nb_revisions, 2u);  // c1 (3 days) and c2 (2 days)
  EXPECT_THROW(plan_gc(scan_cache(f.tmp.path()), {}), Error);
}

TEST(AdminPlan, GcNeverEvictsARevisionWithALockedBlob) {
  ThreeRevisions f;
  store::FileLock lock(f.tmp.path() / ".locks" / "models--org--model" / (f.old_only + ".lock"));
  auto plan = plan_gc(scan_cache(f.tmp.path()), {.max_size = 8000});
  EXPECT_EQ(plan.snapshots, std::vector<fs::path>{f.b.repo_dir() / "snapshots" / f.c2});
  EXPECT_FALSE(plan.warnings.empty());
}

TEST(AdminVerify, HashesBlobsAndNamesBadFiles) {
  TempDir tmp;
  CacheBuilder b(tmp.path(), "org/v");
  auto c = fake_commit(1);
  b.add_file(c, "ok.txt", "fine");
  auto bad = b.add_file(c, "weights.bin", std::string(4096, 'w'), true);
  b.add_file(c, "real.txt", "copied", false, CacheBuilder::LinkStyle::real_file);
  b.set_ref("main", c);
  auto report = verify_revision(tmp.path(), "org/v", RepoType::model);
  EXPECT_EQ(report.commit, c);
  EXPECT_EQ(report.count(FileCheck::Status::ok), 2u);
  EXPECT_EQ(report.count(FileCheck::Status::unverifiable), 1u);
  EXPECT_FALSE(report.has_listing);

  // Flip one byte of the weights blob.
  auto blob = b.repo_dir() / "blobs" / bad;
  std::string content = read_file(blob);
  content[100] ^= 1;
  write_file(blob, content);
  // A tree listing makes the real file verifiable and reveals missing/extra files.
  write_file(b.repo_dir() / "trees" / (c + ".json"),
             R"({"format_version": 1, "files": {"ok.txt": {"size": 4, "blob_id": ")" + util::git_blob_sha1_hex("fine") +
                 R"("}, "real.txt": {"size": 6, "blob_id": ")" + util::git_blob_sha1_hex("copied") +
                 R"("}, "absent.md": {"size": 1, "blob_id": ")" + std::string(40, '0') + R"("}}})");
  report = verify_revision(tmp.path(), "org/v", RepoType::model, "main");
  EXPECT_TRUE(report.has_listing);
  EXPECT_EQ(report.count(FileCheck::Status::ok), 2u);
  ASSERT_EQ(report.count(FileCheck::Status::mismatch), 1u);
  for (const auto& fc : report.files)
    if (fc.status == FileCheck::Status::mismatch) {
      EXPECT_EQ(fc.name, "weights.bin");
      EXPECT_EQ(fc.expected, bad);
    }
  EXPECT_EQ(report.missing, std::vector<std::string>{"absent.md"});
  EXPECT_EQ(report.extra, std::vector<std::string>{"weights.bin"});
}

TEST(AdminVerify, RevisionChoice) {
  TempDir tmp;
  CacheBuilder b(tmp.path(), "org/v");
  b.add_file(fake_commit(1), "a", "a");
  EXPECT_EQ(verify_revision(tmp.path(), "org/v", RepoType::model).commit, fake_commit(1));  // only snapshot
  b.add_file(fake_commit(2), "a", "b");
  EXPECT_THROW(verify_revision(tmp.path(), "org/v", RepoType::model), Error);  // ambiguous
  EXPECT_EQ(verify_revision(tmp.path(), "org/v", RepoType::model, fake_commit(2)).commit, fake_commit(2));
  try {
    verify_revision(tmp.path(), "org/absent", RepoType::model);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::not_cached);
  }
}

}  // namespace
}  // namespace hubcache::test

namespace hubcache::test {
namespace {

// Scans while another thread deletes revisions one by one: no exception, and
// never a spurious corruption warning (refs go before snapshots, blobs last).
TEST(AdminPlan, ScanToleratesConcurrentDeletion) {
  TempDir tmp;
  CacheBuilder b(tmp.path(), "org/busy");
  constexpr int kRevisions = 20;
  for (int v = 0; v < kRevisions; ++v) {
    for (int f = 0; f < 20; ++f)
      b.add_file(fake_commit(v), "d/f" + std::to_string(f),
                 f < 10 ? "shared" + std::to_string(f) : "own" + std::to_string(v * 100 + f));
    b.set_ref("tag" + std::to_string(v), fake_commit(v));
  }
  b.set_ref("main", fake_commit(kRevisions - 1));
  std::atomic<bool> done{false};
  std::thread deleter([&] {
    for (int v = 0; v < kRevisions - 1; ++v) plan_rm(scan_cache(tmp.path()), {fake_commit(v)}).execute();
    done = true;
  });
  int scans = 0;
  while (!done || scans == 0) {
    auto report = scan_cache(tmp.path());
    EXPECT_TRUE(report.warnings.empty()) << report.warnings.front();
    EXPECT_EQ(report.repos.size(), 1u);
    ++scans;
  }
  deleter.join();
  auto last = scan_cache(tmp.path());
  ASSERT_EQ(last.revision_count(), 1u);
  EXPECT_EQ(last.repos[0].nb_files, 20u);
}

// The plan is made from a scan; a download may link a new revision to a planned
// blob, or record a ref to a planned snapshot, before it runs. Neither is deleted.
TEST(AdminPlan, ExecuteSparesWhatADownloadLinkedOrRecordedSinceTheScan) {
  ThreeRevisions f;
  auto plan = plan_rm(scan_cache(f.tmp.path()), {f.c1, f.c2});
  ASSERT_EQ(plan.blobs.size(), 2u);  // old_only and mid_only
  const std::string c4 = fake_commit(4);
  f.b.add_file(c4, "w.bin", std::string(3000, '1'), true);  // reuses old_only's blob
  f.b.set_ref("v4", c4);
  f.b.set_ref("pr", f.c2);  // a download of c2 just recorded a ref
  auto result = plan.execute();
  EXPECT_TRUE(fs::exists(f.b.pointer(c4, "w.bin"))) << "the new revision's link still resolves";
  EXPECT_TRUE(fs::exists(f.blob(f.old_only)));
  EXPECT_FALSE(fs::exists(f.b.repo_dir() / "snapshots" / f.c1));
  EXPECT_TRUE(fs::exists(f.b.pointer(f.c2, "w.bin"))) << "the snapshot a fresh ref points to stays";
  EXPECT_TRUE(fs::exists(f.blob(f.mid_only)));
  EXPECT_FALSE(fs::exists(f.b.repo_dir() / "refs/v1"));
  EXPECT_FALSE(fs::exists(f.b.repo_dir() / "refs/v2"));
  EXPECT_EQ(result.freed, 0u);
  EXPECT_EQ(result.warnings.size(), 3u) << ::testing::PrintToString(result.warnings);
  auto after = scan_cache(f.tmp.path());
  EXPECT_TRUE(after.warnings.empty()) << ::testing::PrintToString(after.warnings);
}

}  // namespace
}  // namespace hubcache::test
