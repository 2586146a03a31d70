// Pure parsers for the HTTP header values the transfer engine acts on. No I/O, no
// allocation beyond the returned values, no libcurl: each takes untrusted text
// from a server and either returns a fully validated value or nullopt, so the
// fuzzers (fuzz/) can drive them directly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace hubcache::http {

namespace detail {

inline bool is_ows(char c) { return c == ' ' || c == '\t'; }

inline std::string_view trim(std::string_view v) {
  while (!v.empty() && is_ows(v.front())) v.remove_prefix(1);
  while (!v.empty() && is_ows(v.back())) v.remove_suffix(1);
  return v;
}

inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
inline std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

inline int month_index(std::string_view m) {
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  for (int i = 0; i < 12; ++i)
    if (iequals(m, kMonths[i])) return i + 1;
  return 0;
}

// Exactly `n` digits at `v[pos]`.
inline std::optional<unsigned> digits(std::string_view v, std::size_t pos, std::size_t n) {
  if (pos + n > v.size()) return std::nullopt;
  unsigned out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (v[i] < '0' || v[i] > '9') return std::nullopt;
    out = out * 10 + static_cast<unsigned>(v[i] - '0');
  }
  return out;
}

inline std::optional<std::time_t> make_time(std::int64_t year, unsigned mon, unsigned day, unsigned h, unsigned mi,
                                            unsigned s) {
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return static_cast<std::time_t>(days_from_civil(year, mon, day) * 86400 + h * 3600 + mi * 60 + s);
}

// "HH:MM:SS" at v[pos].
inline bool clock_at(std::string_view v, std::size_t pos, unsigned& h, unsigned& m, unsigned& s) {
  auto hh = digits(v, pos, 2), mm = digits(v, pos + 3, 2), ss = digits(v, pos + 6, 2);
  if (!hh || !mm || !ss || v[pos + 2] != ':' || v[pos + 5] != ':') return false;
  h = *hh, m = *mm, s = *ss;
  return true;
}

}  // namespace detail

// One response header line as libcurl hands it over ("Name: value\r\n"): the name and the
// value without the surrounding blanks (RFC 9110 OWS), a CR, LF or NUL inside it turned into a
// space (RFC 9110 5.5). nullopt for a status line, the blank end-of-headers line, and anything
// that is not `token ":" value` (no colon, an empty name, or a name with blanks or control
// characters, e.g. an obsolete folded continuation line).
inline std::optional<std::pair<std::string, std::string>> parse_header_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view name = line.substr(0, colon);
  for (unsigned char c : name)
    if (c <= 0x20 || c == 0x7f) return std::nullopt;  // not a token: "Name :", folded lines, NULs
  // Replaced before trimming, so a CR next to the blanks is trimmed with them.
  std::string value(line.substr(colon + 1));
  std::replace_if(
      value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; }, ' ');
  return std::make_pair(std::string(name), std::string(detail::trim(value)));
}

// A decimal unsigned integer with nothing around it (no sign, no spaces, no
// overflow). Content-Length and friends.
inline std::optional<std::uint64_t> parse_u64(std::string_view v) {
  if (v.empty() || v.size() > 20) return std::nullopt;
  std::uint64_t out = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (out > (UINT64_MAX - d) / 10) return std::nullopt;
    out = out * 10 + d;
  }
  return out;
}

// Content-Range of a 206 ("bytes 0-499/1234", "bytes 0-499/*") or a 416
// ("bytes */1234"). `first <= last` is guaranteed, and `last < complete` when the
// complete length is known.
struct ContentRange {
  bool satisfied = true;  // false for "bytes */N" (then first/last are 0)
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
  std::optional<std::uint64_t> complete;
  std::uint64_t length() const { return satisfied ? last - first + 1 : 0; }
};

inline std::optional<ContentRange> parse_content_range(std::string_view v) {
  v = detail::trim(v);
  const auto sp = v.find(' ');
  if (sp == std::string_view::npos || !detail::iequals(v.substr(0, sp), "bytes")) return std::nullopt;
  v = detail::trim(v.substr(sp + 1));
  const auto slash = v.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view range = v.substr(0, slash), complete = v.substr(slash + 1);
  ContentRange out;
  if (complete != "*") {
    out.complete = parse_u64(complete);
    if (!out.complete) return std::nullopt;
  }
  if (range == "*") {
    if (!out.complete) return std::nullopt;  // "bytes */*" means nothing
    out.satisfied = false;
    return out;
  }
  const auto dash = range.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto first = parse_u64(range.substr(0, dash)), last = parse_u64(range.substr(dash + 1));
  if (!first || !last || *first > *last) return std::nullopt;
  if (out.complete && *last >= *out.complete) return std::nullopt;
  out.first = *first;
  out.last = *last;
  return out;
}

// An HTTP-date in any of the three forms RFC 9110 §5.6.7 makes recipients accept:
// IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT",
// asctime "Sun Nov  6 08:49:37 1994". Seconds since the epoch (UTC).
inline std::optional<std::time_t> parse_http_date(std::string_view v) {
  v = detail::trim(v);
  unsigned h = 0, mi = 0, s = 0;
  const auto comma = v.find(',');
  if (comma != std::string_view::npos) {
    std::string_view rest = v.substr(comma + 1);
    if (rest.empty() || rest.front() != ' ') return std::nullopt;
    rest.remove_prefix(1);
    if (rest.size() == 24 && rest[2] == ' ' && rest[6] == ' ' && rest[11] == ' ' && rest.substr(20) == " GMT") {
      // IMF-fixdate: "06 Nov 1994 08:49:37 GMT"
      auto day = detail::digits(rest, 0, 2), year = detail::digits(rest, 7, 4);
      const int mon = detail::month_index(rest.substr(3, 3));
      if (!day || !year || !mon || !detail::clock_at(rest, 12, h, mi, s)) return std::nullopt;
      return detail::make_time(*year, static_cast<unsigned>(mon), *day, h, mi, s);
    }
    if (rest.size() == 22 && rest[2] == '-' && rest[6] == '-' && rest[9] == ' ' && rest.substr(18) == " GMT") {
      // RFC 850: "06-Nov-94 08:49:37 GMT"; a two-digit year is taken as the 1970-2069 window.
      auto day = detail::digits(rest, 0, 2), yy = detail::digits(rest, 7, 2);
      const int mon = detail::month_index(rest.substr(3, 3));
      if (!day || !yy || !mon || !detail::clock_at(rest, 10, h, mi, s)) return std::nullopt;
      return detail::make_time(*yy < 70 ? 2000 + *yy : 1900 + *yy, static_cast<unsigned>(mon), *day, h, mi, s);
    }
    return std::nullopt;
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (v.size() != 24 || v[3] != ' ' || v[7] != ' ' || v[10] != ' ' || v[19] != ' ') return std::nullopt;
  const int mon = detail::month_index(v.substr(4, 3));
  std::optional<unsigned> day = v[8] == ' ' ? detail::digits(v, 9, 1) : detail::digits(v, 8, 2);
  auto year = detail::digits(v, 20, 4);
  if (!mon || !day || !year || !detail::clock_at(v, 11, h, mi, s)) return std::nullopt;
  return detail::make_time(*year, static_cast<unsigned>(mon), *day, h, mi, s);
}

// Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date. Seconds to wait
// from `now`, never negative; nullopt when unparsable.
inline std::optional<std::int64_t> parse_retry_after(std::string_view v, std::time_t now) {
  v = detail::trim(v);
  if (auto secs = parse_u64(v)) return static_cast<std::int64_t>(std::min<std::uint64_t>(*secs, INT64_MAX));
  if (auto when = parse_http_date(v)) return *when > now ? static_cast<std::int64_t>(*when - now) : 0;
  return std::nullopt;
}

// The reset time `t=` of a RateLimit header ("limit=500, remaining=0, reset=20" or
// the Hub's `"api";r=0;t=55`), in seconds.
inline std::optional<std::int64_t> parse_ratelimit_reset(std::string_view v) {
  for (std::size_t pos = 0; pos < v.size();) {
    auto end = v.find_first_of(";,", pos);
    std::string_view item =
        detail::trim(v.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    const auto eq = item.find('=');
    if (eq != std::string_view::npos) {
      auto key = detail::trim(item.substr(0, eq));
      if (detail::iequals(key, "t") || detail::iequals(key, "reset")) {
        if (auto n = parse_u64(detail::trim(item.substr(eq + 1))))
          return static_cast<std::int64_t>(std::min<std::uint64_t>(*n, INT64_MAX));
      }
    }
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return std::nullopt;
}

// Accept-Ranges: does the server say it serves byte ranges? ("bytes", possibly in
// a list of units; "none" or anything else is no.)
inline bool accepts_byte_ranges(std::string_view v) {
  for (std::size_t pos = 0; pos <= v.size();) {
    auto end = v.find(',', pos);
    if (detail::iequals(detail::trim(v.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos)),
                        "bytes"))
      return true;
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return false;
}

// A strong entity tag ("xyz", not W/"xyz"), usable as an If-Range validator.
inline bool is_strong_etag(std::string_view v) {
  v = detail::trim(v);
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return false;
  for (char c : v.substr(1, v.size() - 2))
    if (c == '"' || static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return false;
  return true;
}

// "bytes=first-last" (inclusive), or "bytes=first-" for an open end.
inline std::string range_header(std::uint64_t first, std::optional<std::uint64_t> last) {
  return "bytes=" + std::to_string(first) + "-" + (last ? std::to_string(*last) : std::string());
}

}  // namespace hubcache::http
