// The pure header parsers of src/http/headers.hpp.
#include <gtest/gtest.h>

#include "http/headers.hpp"

using namespace hubcache::http;

TEST(ContentRange, ParsesSatisfiedUnknownAndUnsatisfiedForms) {
  auto r = parse_content_range("bytes 0-499/1234");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->satisfied);
  EXPECT_EQ(r->first, 0u);
  EXPECT_EQ(r->last, 499u);
  EXPECT_EQ(r->complete, 1234u);
  EXPECT_EQ(r->length(), 500u);
  r = parse_content_range("  BYTES 10-10/*");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->complete);
  EXPECT_EQ(r->length(), 1u);
  r = parse_content_range("bytes */1234");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->satisfied);
  EXPECT_EQ(r->complete, 1234u);
}

TEST(ContentRange, RejectsEverythingElse) {
  for (const char* bad : {"", "bytes", "bytes 5-4/10", "bytes 0-10/10", "bytes */*", "items 0-1/2", "bytes 0-1",
                          "bytes -1-2/3", "bytes 0-1/x", "bytes 0 -1/3", "bytes 1-/3", "bytes 99999999999999999999-1/3",
                          "bytes 0-18446744073709551616/1"})
    EXPECT_FALSE(parse_content_range(bad)) << bad;
}

TEST(ParseU64, IsStrict) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(parse_u64("18446744073709551616"));
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1e3", "0x10"}) EXPECT_FALSE(parse_u64(bad)) << bad;
}

TEST(RetryAfter, SecondsOrAnHttpDate) {
  EXPECT_EQ(parse_retry_after("120", 0), 120);
  EXPECT_EQ(parse_retry_after(" 0 ", 0), 0);
  const std::time_t t = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t - 30), 30);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t + 30), 0) << "a date in the past: no wait";
  EXPECT_FALSE(parse_retry_after("soon", 0));
  EXPECT_FALSE(parse_retry_after("-5", 0));
}

TEST(HttpDate, AllThreeFormsGiveTheSameInstant) {
  const std::time_t t = 784111777;
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), t);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), t);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), t);
  EXPECT_EQ(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
  EXPECT_EQ(parse_http_date("Tue, 29 Feb 2000 23:59:59 GMT"), 951868799);
  for (const char* bad :
       {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 GMT trailing"})
    EXPECT_FALSE(parse_http_date(bad)) << bad;
}

TEST(RateLimit, ResetSeconds) {
  EXPECT_EQ(parse_ratelimit_reset("\"api\";r=0;t=55"), 55);
  EXPECT_EQ(parse_ratelimit_reset("limit=500, remaining=0, reset=20"), 20);
  EXPECT_FALSE(parse_ratelimit_reset("limit=500"));
  EXPECT_FALSE(parse_ratelimit_reset("t=soon"));
}

TEST(AcceptRanges, OnlyBytesCounts) {
  EXPECT_TRUE(accepts_byte_ranges("bytes"));
  EXPECT_TRUE(accepts_byte_ranges(" Bytes "));
  EXPECT_TRUE(accepts_byte_ranges("other, bytes"));
  EXPECT_FALSE(accepts_byte_ranges("none"));
  EXPECT_FALSE(accepts_byte_ranges(""));
  EXPECT_FALSE(accepts_byte_ranges("bytesx"));
}

TEST(Etag, StrongOnly) {
  EXPECT_TRUE(is_strong_etag("\"abc\""));
  EXPECT_TRUE(is_strong_etag("\"\""));
  EXPECT_FALSE(is_strong_etag("W/\"abc\""));
  EXPECT_FALSE(is_strong_etag("abc"));
  EXPECT_FALSE(is_strong_etag("\"a\"b\""));
  EXPECT_FALSE(is_strong_etag("\""));
}

TEST(RangeHeader, ClosedAndOpen) {
  EXPECT_EQ(range_header(0, 99), "bytes=0-99");
  EXPECT_EQ(range_header(100, std::nullopt), "bytes=100-");
}
