// HTTP response headers: raw header lines as libcurl hands them over -> http::Headers ->
// the metadata the cache trusts (X-Repo-Commit, the ETag that names a blob, the size), ETag
// normalisation, and relative redirects (which keep the request on the same origin).
//
// Input: byte 0 holds flags (bit 0: the answer was a redirect), then header lines separated
// by '\n', as curl delivers them ("Name: value\r\n").
//
// The values the transfer engine parses (Content-Range, Retry-After, RateLimit, ...) have
// their own target, http_ranges.cpp.
#include <charconv>
#include <filesystem>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "http/client.hpp"
#include "http/headers.hpp"
#include "hub/hub_client.hpp"
#include "layout/naming.hpp"

using namespace hubcache;
using fuzz::printable;
using namespace std::string_literals;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string flip_case(std::string s) {
  for (auto& c : s) c = std::isupper(static_cast<unsigned char>(c)) ? std::tolower(c) : std::toupper(c);
  return s;
}

void check_line(std::string_view line, http::Headers& headers) {
  auto h = http::parse_header_line(line);
  if (!h) return;
  const auto& [name, value] = *h;
  FUZZ_CHECK(!name.empty(), printable(line));
  for (unsigned char c : name) FUZZ_CHECK(c > 0x20 && c != 0x7f && c != ':', "name of " + printable(line));
  FUZZ_CHECK(line.rfind(name + ":", 0) == 0, printable(line));
  std::string spaced(line.substr(name.size() + 1));  // RFC 9110 5.5: CR, LF and NUL read as spaces
  for (auto& c : spaced)
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  FUZZ_CHECK(spaced.find(value) != std::string::npos, printable(line));
  FUZZ_CHECK(value.find_first_of("\r\n"s + '\0') == std::string::npos, "value of " + printable(line));
  if (!value.empty()) {
    for (char c : {value.front(), value.back()})
      FUZZ_CHECK(c != ' ' && c != '\t' && c != '\r' && c != '\n', "value of " + printable(line));
  }
  headers.add(name, value);
}

void check_lookup(const http::Headers& headers) {
  for (const auto& [name, value] : headers.items()) {
    auto got = headers.get(flip_case(name));
    FUZZ_CHECK(got, "case-insensitive lookup of " + printable(name));
    for (const auto& [n, v] : headers.items())
      if (iequals(n, name)) {
        FUZZ_CHECK(*got == v, "not the first " + printable(name));
        break;
      }
  }
}

void check_etag_normalisation(const std::string& etag) {
  const std::string n = layout::normalize_etag(etag);
  FUZZ_CHECK(etag.find(n) != std::string::npos, printable(etag));
  FUZZ_CHECK(n.empty() || (n.front() != '"' && n.back() != '"'), printable(etag));
  FUZZ_CHECK(layout::normalize_etag("W/\"" + n + "\"") == layout::normalize_etag("\"" + n + "\""), printable(etag));
}

// A blob name must stay a single entry of blobs/, with its lock and temp names.
bool usable_blob_name(const std::string& etag) {
  const std::filesystem::path blobs = "/cache/models--o--n/blobs";
  for (const std::string& name : {etag, etag + ".lock", etag + ".0123abcd.incomplete"}) {
    auto joined = (blobs / name).lexically_normal();
    if (joined.parent_path() != blobs || joined.filename() != name) return false;
  }
  for (unsigned char c : etag)
    if (c < 0x20 || c == 0x7f) return false;  // NUL truncates a path; others break logs and listings
  return !etag.empty();
}

void check_metadata(const http::Headers& headers, bool redirect) {
  hub::Context ctx;
  ctx.endpoint = "https://hub.example";
  ctx.repo_id = "org/name";
  ctx.revision = "main";
  ctx.file = "config.json";
  hub::FileMetadata m;
  try {
    m = hub::parse_file_metadata(headers, redirect, ctx);
  } catch (const Error& e) {
    FUZZ_CHECK(e.code() == ErrorCode::http || e.code() == ErrorCode::integrity, e.what());
    return;
  }
  FUZZ_CHECK(layout::is_commit_hash(m.commit) && m.commit == headers.get("X-Repo-Commit"), printable(m.commit));
  auto etag = headers.get("X-Linked-Etag");
  if (!etag) etag = headers.get("ETag");
  FUZZ_CHECK(etag && m.etag == layout::normalize_etag(*etag), printable(m.etag));
  FUZZ_CHECK(usable_blob_name(m.etag), "unusable blob name accepted: " + printable(m.etag));
  auto size = headers.get("X-Linked-Size");
  if (!size && !redirect) size = headers.get("Content-Length");
  FUZZ_CHECK(size, "size without a size header");
  // The size must be the header's decimal value: no sign, no trailing garbage, no wrap-around.
  std::uint64_t want = 0;
  auto [end, ec] = std::from_chars(size->data(), size->data() + size->size(), want);
  FUZZ_CHECK(ec == std::errc() && end == size->data() + size->size() && !size->empty() && (*size)[0] != '+',
             "size accepted from " + printable(*size));
  FUZZ_CHECK(m.size == want, printable(*size));
}

void check_location(const std::string& value) {
  const std::string base = "https://hub.example/org/name/resolve/main/config.json";
  if (!http::is_relative_location(value)) return;
  const std::string next = http::resolve_location(base, value);
  // A relative redirect is followed with the token: it must not leave the endpoint's origin.
  FUZZ_CHECK(next == value || http::origin_of(next) == http::origin_of(base),
             printable(value) + " resolved to " + printable(next));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool redirect = data[0] & 1;
  std::string_view block(reinterpret_cast<const char*>(data) + 1, size - 1);
  http::Headers headers;
  while (!block.empty()) {
    auto nl = block.find('\n');
    std::string_view line = block.substr(0, nl == std::string_view::npos ? block.size() : nl + 1);
    block.remove_prefix(line.size());
    check_line(line, headers);
  }
  check_lookup(headers);
  for (const auto& [name, value] : headers.items()) {
    if (iequals(name, "ETag") || iequals(name, "X-Linked-Etag")) check_etag_normalisation(value);
    if (iequals(name, "Location")) check_location(value);
  }
  check_metadata(headers, redirect);
  return 0;
}
