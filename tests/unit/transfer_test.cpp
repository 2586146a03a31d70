// The pure parts of the download engine: the interval set, the resume journal,
// the bandwidth budget.
#include <gtest/gtest.h>

#include "support/test_support.hpp"
#include "transfer/intervals.hpp"
#include "transfer/journal.hpp"
#include "transfer/rate_limit.hpp"

using namespace hubcache;
using namespace hubcache::transfer;

TEST(IntervalSet, MergesAndReportsGaps) {
  IntervalSet s;
  s.add(10, 20);
  s.add(30, 40);
  EXPECT_EQ(s.total(), 20u);
  EXPECT_EQ(s.prefix_end(), 0u);
  s.add(20, 30);  // touching: one range
  EXPECT_EQ(s.ranges().size(), 1u);
  EXPECT_EQ(s.total(), 30u);
  s.add(0, 5);
  s.add(3, 12);  // overlapping
  EXPECT_EQ(s.prefix_end(), 40u);
  EXPECT_EQ(s.total(), 40u);
  s.add(50, 60);
  s.add(55, 58);  // inside
  EXPECT_EQ(s.total(), 50u);
  EXPECT_TRUE(s.covers(0, 40));
  EXPECT_TRUE(s.covers(52, 60));
  EXPECT_FALSE(s.covers(39, 41));
  auto gaps = s.gaps(100);
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0], (IntervalSet::Range{40, 50}));
  EXPECT_EQ(gaps[1], (IntervalSet::Range{60, 100}));
  s.add(0, 100);
  EXPECT_TRUE(s.gaps(100).empty());
  EXPECT_EQ(s.total(), 100u);
  s.add(7, 7);  // empty: nothing
  EXPECT_EQ(s.ranges().size(), 1u);
}

TEST(Journal, RoundTripsAndClipsToTheFile) {
  Journal j;
  j.etag = std::string(64, 'a');
  j.size = 1000;
  j.url = "http://127.0.0.1:1/x";
  j.validator = "\"v\"";
  j.done.add(0, 100);
  j.done.add(500, 700);
  auto back = parse_journal(journal_to_json(j), 1000);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->etag, j.etag);
  EXPECT_EQ(back->size, 1000u);
  EXPECT_EQ(back->validator, "\"v\"");
  EXPECT_EQ(back->done.ranges(), j.done.ranges());
  // A file shorter than the journal claims: only what the file holds counts.
  back = parse_journal(journal_to_json(j), 600);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->done.total(), 200u);
}

TEST(Journal, VersionOneSidecarMeansTheFileIsItsProgress) {
  auto j = parse_journal(R"({"etag":"abc","size":1000,"url":"u"})", 300);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->done.prefix_end(), 300u);
  EXPECT_FALSE(parse_journal(R"({"etag":"abc","size":1000,"url":"u"})", 1001)) << "longer than the object";
}

TEST(Journal, RejectsGarbage) {
  for (const char* bad : {"", "[]", "{", R"({"size":1})", R"({"etag":"","size":1})", R"({"etag":"a","size":-1})",
                          R"({"etag":"a","size":"1"})", R"({"etag":"a","size":10,"done":[[5,1]]})",
                          R"({"etag":"a","size":10,"done":[[1]]})", R"({"etag":"a","size":10,"done":{"a":1}})",
                          R"({"etag":"a","size":10,"done":[[-1,2]]})", R"({"etag":3,"size":10})"})
    EXPECT_FALSE(parse_journal(bad, 10)) << bad;
}

TEST(Journal, IsWrittenAtomicallyNextToItsFile) {
  test::TempDir dir;
  const auto temp = dir / "blob.12345678.incomplete";
  Journal j;
  j.etag = "e";
  j.size = 10;
  j.done.add(2, 4);
  ASSERT_TRUE(write_journal(temp, j));
  EXPECT_FALSE(std::filesystem::exists(sidecar_temp_of(temp)));
  auto back = parse_journal(test::read_file(sidecar_of(temp)), 10);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->done.total(), 2u);
  EXPECT_FALSE(write_journal(dir / "missing-dir/x.incomplete", j));
}

TEST(RateLimiter, SharedPerCapAndChargesDebt) {
  auto a = RateLimiter::shared(1000);
  auto b = RateLimiter::shared(1000);
  EXPECT_EQ(a.get(), b.get()) << "downloads with the same cap share one budget";
  EXPECT_NE(RateLimiter::shared(2000).get(), a.get());
  EXPECT_EQ(RateLimiter::shared(0), nullptr);
  RateLimiter limiter(1'000'000);
  EXPECT_EQ(limiter.consume(10).count(), 0) << "within the burst";
  // A whole second of bytes at once: the taker must wait about a second (less the burst).
  const auto wait = limiter.consume(1'000'000);
  EXPECT_GT(wait, std::chrono::milliseconds(900));
  EXPECT_LT(wait, std::chrono::milliseconds(1100));
}
