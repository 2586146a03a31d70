// The transfer engine's header-value parsers (src/http/headers.hpp: Content-Range, Retry-After
// and HTTP-dates, RateLimit, Accept-Ranges, strong ETags). Byte 0 picks the mode:
//  - raw: each parser on the rest; what they return must be self-consistent and, formatted
//    back, parse to the same value;
//  - generated: a valid Content-Range and HTTP-date (all three RFC 9110 forms) built from
//    random numbers must parse to exactly those numbers.
#include <fuzzer/FuzzedDataProvider.h>

#include <charconv>
#include <cstdio>
#include <ctime>
#include <string>

#include "fuzz_support.hpp"
#include "http/headers.hpp"

using namespace hubcache;
using fuzz::printable;

namespace {

std::string content_range(const http::ContentRange& r) {
  std::string out = "bytes ";
  out += r.satisfied ? std::to_string(r.first) + "-" + std::to_string(r.last) : "*";
  return out + "/" + (r.complete ? std::to_string(*r.complete) : "*");
}

// The three forms of an HTTP-date for `t` (UTC), as a server could send them.
std::string http_date(std::time_t t, int form) {
  std::tm tm{};
  if (!::gmtime_r(&t, &tm)) return "";
  char buf[64];
  const char* fmt = form == 0   ? "%a, %d %b %Y %H:%M:%S GMT"
                    : form == 1 ? "%A, %d-%b-%y %H:%M:%S GMT"
                                : "%a %b %e %H:%M:%S %Y";
  return std::string(buf, std::strftime(buf, sizeof buf, fmt, &tm));
}

void raw(std::string_view v) {
  auto n = http::parse_u64(v);
  std::uint64_t want = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), want);
  const bool decimal = !v.empty() && ec == std::errc() && end == v.data() + v.size();
  // parse_u64 caps the text at 20 characters (so "000...0123" of 21+ digits is refused, on purpose).
  FUZZ_CHECK(n.has_value() == (decimal && v.size() <= 20) && (!n || *n == want), printable(v));

  if (auto r = http::parse_content_range(v)) {
    if (r->satisfied) {
      FUZZ_CHECK(r->first <= r->last && (!r->complete || r->last < *r->complete), printable(v));
    } else {
      FUZZ_CHECK(r->complete && r->length() == 0, printable(v));
    }
    auto again = http::parse_content_range(content_range(*r));
    FUZZ_CHECK(again && again->satisfied == r->satisfied && again->first == r->first && again->last == r->last &&
                   again->complete == r->complete,
               "Content-Range round trip of " + printable(v));
  }

  if (auto t = http::parse_http_date(v)) {
    // Dates the parser takes re-format and re-parse to the same instant (years of 4 digits).
    std::tm tm{};
    if (::gmtime_r(&*t, &tm) && tm.tm_year + 1900 >= 1000 && tm.tm_year + 1900 <= 9999)
      FUZZ_CHECK(http::parse_http_date(http_date(*t, 0)) == t, printable(v) + " -> " + http_date(*t, 0));
  }
  const std::time_t now = 1'700'000'000;
  if (auto wait = http::parse_retry_after(v, now)) FUZZ_CHECK(*wait >= 0, printable(v));
  if (auto reset = http::parse_ratelimit_reset(v)) FUZZ_CHECK(*reset >= 0, printable(v));
  (void)http::accepts_byte_ranges(v);
  if (http::is_strong_etag(v)) {
    auto t = v.find_first_not_of(" \t");
    FUZZ_CHECK(v[t] == '"' && v.substr(t, 2) != "W/", printable(v));
  }
}

void generated(FuzzedDataProvider& in) {
  http::ContentRange r;
  r.first = in.ConsumeIntegral<std::uint64_t>();
  r.last = in.ConsumeIntegralInRange<std::uint64_t>(r.first, UINT64_MAX);
  if (in.ConsumeBool() && r.last < UINT64_MAX)
    r.complete = in.ConsumeIntegralInRange<std::uint64_t>(r.last + 1, UINT64_MAX);
  const std::string text = content_range(r);
  auto got = http::parse_content_range(text);
  FUZZ_CHECK(got && got->first == r.first && got->last == r.last && got->complete == r.complete, printable(text));
  FUZZ_CHECK(got->length() == r.last - r.first + 1 || (r.first == 0 && r.last == UINT64_MAX), printable(text));

  // RFC 850 dates carry a two-digit year: the parser's window is 1970-2069.
  const int form = in.ConsumeIntegralInRange(0, 2);
  const std::time_t lo = form == 1 ? 0 : -62135596800;           // 0001-01-01 for the 4-digit forms
  const std::time_t hi = form == 1 ? 3155759999 : 253402300799;  // 2069-12-31 / 9999-12-31
  std::time_t t = in.ConsumeIntegralInRange<std::int64_t>(lo, hi);
  std::tm tm{};
  if (!::gmtime_r(&t, &tm) || (form != 1 && tm.tm_year + 1900 < 1000)) return;  // %Y would not print 4 digits
  const std::string date = http_date(t, form);
  FUZZ_CHECK(http::parse_http_date(date) == t, printable(date) + " should be " + std::to_string(t));
  FUZZ_CHECK(http::parse_retry_after(date, t - 5) == 5, printable(date));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 1) {
    FuzzedDataProvider in(data + 1, size - 1);
    generated(in);
  } else {
    raw(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  }
  return 0;
}
