// Inputs the fuzz targets (fuzz/) found, each replayed against the parser it broke. The same
// inputs are in fuzz/corpus/<target>/ so the fuzzers replay them too.
#include <gtest/gtest.h>

#include <string>

#include "http/client.hpp"
#include "http/headers.hpp"
#include "hub/hub_client.hpp"
#include "hub/repo_api.hpp"
#include "hubcache/error.hpp"

using namespace hubcache;
using namespace std::string_literals;

namespace {

constexpr const char* kCommit = "607a30d783dfa663caf39e06633721c8d4cfcd7e";
constexpr const char* kGitSha = "d7edf6bd2a681fb0175f7735299831ee1b22b812";

hub::Context context() {
  hub::Context ctx;
  ctx.endpoint = "https://hub.example";
  ctx.repo_id = "org/name";
  ctx.revision = "main";
  ctx.file = "config.json";
  return ctx;
}

// Headers as the client would collect them from raw lines.
http::Headers headers_from(const std::vector<std::string>& lines) {
  http::Headers h;
  for (const auto& line : lines)
    if (auto parsed = http::parse_header_line(line)) h.add(parsed->first, parsed->second);
  return h;
}

ErrorCode metadata_error(const http::Headers& h, bool redirect = false) {
  try {
    hub::parse_file_metadata(h, redirect, context());
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::internal;  // accepted
}

}  // namespace

// fuzz_http_headers: a size followed by garbage was accepted as its numeric prefix (strtoull),
// and "-1" wrapped around to 2^64-1.
TEST(FuzzRegressions, FileMetadataSizeMustBeDecimalOnly) {
  for (std::string size : {"519\r\x1c\0\0\0\0\0\0\0"s, "-1"s, "12abc"s, "+5"s, "18446744073709551616"s, ""s}) {
    auto h = headers_from({"ETag: \""s + kGitSha + "\"\r\n", "X-Repo-Commit: "s + kCommit + "\r\n"});
    h.add("Content-Length", size);
    EXPECT_EQ(metadata_error(h), ErrorCode::http) << "size " << testing::PrintToString(size);
  }
  auto ok = headers_from(
      {"ETag: \""s + kGitSha + "\"\r\n", "X-Repo-Commit: "s + kCommit + "\r\n", "Content-Length:   519  \r\n"});
  auto m = hub::parse_file_metadata(ok, false, context());
  EXPECT_EQ(m.size, 519u);
  EXPECT_EQ(m.etag, kGitSha);
  EXPECT_EQ(m.commit, kCommit);
}

// fuzz_http_headers: an ETag holding a CR (and so any control character, NUL included) was
// accepted as a blob name.
TEST(FuzzRegressions, FileMetadataRefusesControlCharactersInEtags) {
  for (std::string etag : {"4bb2a8a3ab5a1a1a6ef5d7e3b0c44298fc1c149afbffc1c1ontent-Length: 1110\re41e464"s, "ab\0cd"s,
                           "abc\x1b[2J"s, "abc\x7f"s}) {
    auto h = headers_from({"X-Repo-Commit: "s + kCommit + "\r\n", "Content-Length: 5\r\n"});
    h.add("ETag", "\"" + etag + "\"");
    EXPECT_EQ(metadata_error(h), ErrorCode::integrity) << testing::PrintToString(etag);
  }
}

// fuzz_http_headers: a CR inside a header value (here its first byte) stayed in the value.
TEST(FuzzRegressions, HeaderValuesHaveNoCrLfOrNul) {
  auto h = http::parse_header_line("X-Linked-Etag: \r\"");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->first, "X-Linked-Etag");
  EXPECT_EQ(h->second, "\"");
  h = http::parse_header_line("ETag: \"a\rb\0c\"  \r\n"s);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->second, "\"a b c\"");
  EXPECT_FALSE(http::parse_header_line(" folded: continuation\r\n"));
  EXPECT_FALSE(http::parse_header_line("HTTP/1.1 301 Moved: elsewhere\r\n"));
  EXPECT_FALSE(http::parse_header_line("\r\n"));
}

// fuzz_link_header: next_link matched the text rel="next" anywhere after a link, so it missed
// a rel holding several types or another case ("First Next"), and took rel="next-archive", a
// rel=next inside a quoted title, or a second rel of the same link.
TEST(FuzzRegressions, LinkHeaderFollowsRfc8288) {
  EXPECT_EQ(hub::next_link("</api/tree?p=qp>; Rel=\"First Next\" ;rel=\"Last\";title=\"\","
                           "<https://hub.example/api/models/o/n/tree/main?cursor=>"),
            "/api/tree?p=qp");
  EXPECT_EQ(hub::next_link("<https://h/a>; rel=\"next-archive\", <https://h/b>; rel=\"next\""), "https://h/b");
  EXPECT_EQ(hub::next_link("<https://h/a>; title=\"rel=\\\"next\\\"\"; rel=prev, <https://h/b>; REL=NEXT"),
            "https://h/b");
  EXPECT_EQ(hub::next_link("<https://h/a>; rel=prev; rel=next"), std::nullopt);
  EXPECT_EQ(hub::next_link("<https://h/a?x=1,2;y>; title=\"a, <b>; c\"; rel=\"next\""), "https://h/a?x=1,2;y");
  // What the Hub sends.
  EXPECT_EQ(hub::next_link("<https://huggingface.co/api/models/gpt2/tree/main?recursive=true&cursor=ZXk%3D>; "
                           "rel=\"next\""),
            "https://huggingface.co/api/models/gpt2/tree/main?recursive=true&cursor=ZXk%3D");
  EXPECT_EQ(hub::next_link("<https://h/x>; rel=\"xet-auth\""), std::nullopt);
  EXPECT_EQ(hub::next_link(""), std::nullopt);
}
