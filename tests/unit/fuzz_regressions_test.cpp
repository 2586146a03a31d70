// Inputs the fuzz targets (fuzz/) found, each replayed against the parser it broke. The same
// inputs are in fuzz/corpus/<target>/ so the fuzzers replay them too.
#include <gtest/gtest.h>

#include <string>

#include "http/client.hpp"
#include "http/headers.hpp"
#include "hub/hub_client.hpp"
#include "hub/repo_api.hpp"
#include "hubcache/admin.hpp"
#include "hubcache/error.hpp"
#include "store/repo_cache.hpp"
#include "store/tree_cache.hpp"
#include "support/test_support.hpp"
#include "transfer/journal.hpp"
#include "transfer/local_metadata.hpp"

using namespace hubcache;
using namespace std::string_literals;

namespace {

constexpr const char* kCommit = "607a30d783dfa663caf39e06633721c8d4cfcd7e";
constexpr const char* kGitSha = "d7edf6bd2a681fb0175f7735299831ee1b22b812";
constexpr const char* kSha256 = "4bb2a8a3ab5a1a1a6ef5d7e3b0c44298fc1c149afbf4c8996fb92427ae41e464";

std::string tree_cache_json(const std::string& entry) {
  return "{\n \"files\": {\n  \"config.json\": {\"size\": 665, \"blob_id\": \""s + kGitSha +
         "\"},\n  \"model.safetensors\": " + entry + "\n },\n \"format_version\": 1\n}";
}

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

// fuzz_cache_files: trees/<commit>.json was trusted for blob names, so a planted or corrupt file
// could name blobs/<anything>, "../../x" included, for the snapshot download to write.
TEST(FuzzRegressions, TreeCacheRefusesBlobNamesThatAreNotHashes) {
  for (std::string etag : {"4bb2a8a3ab;a1a1a6ef5d7e3b0c44298fc1c149afbf4c8996fb92427ae41e464"s, "../../../../outside"s,
                           std::string(kSha256) + "0"}) {
    EXPECT_FALSE(store::parse_tree_cache(tree_cache_json("{\"size\": 5, \"blob_id\": \""s + kGitSha +
                                                         "\", \"lfs_sha256\": \"" + etag + "\", \"lfs_size\": 5}")))
        << etag;
  }
  EXPECT_FALSE(store::parse_tree_cache(tree_cache_json("{\"size\": 5, \"blob_id\": \"../x\"}")));

  // Through the file the snapshot download reads.
  test::TempDir dir;
  store::RepoCache cache(dir.path(), "org/name", RepoType::model);
  test::write_file(cache.repo_dir() / "trees" / (std::string(kCommit) + ".json"),
                   tree_cache_json("{\"size\": 5, \"blob_id\": \"../../../../outside\"}"));
  EXPECT_FALSE(store::read_tree_cache(cache, kCommit));

  auto good = store::parse_tree_cache(tree_cache_json("{\"size\": 5, \"blob_id\": \""s + kGitSha +
                                                      "\", \"lfs_sha256\": \"" + kSha256 + "\", \"lfs_size\": 5}"));
  ASSERT_TRUE(good);
  ASSERT_EQ(good->size(), 2u);
  EXPECT_EQ((*good)[1].etag(), kSha256);
}

// fuzz_cache_files: a field of another type ("blob_id": 548105171) made nlohmann's value()
// throw type_error out of the reader, failing every snapshot of that commit.
TEST(FuzzRegressions, TreeCacheWithMistypedFieldsIsIgnored) {
  for (std::string entry :
       {"{\"size\": 548105171, \"blob_id\": 548105171}"s, "{\"size\": \"5\"}"s,
        "{\"size\": -5, \"blob_id\": \""s + kGitSha + "\"}", "{\"size\": 1e300, \"blob_id\": \""s + kGitSha + "\"}"}) {
    std::optional<std::vector<hub::TreeFile>> files;
    EXPECT_NO_THROW(files = store::parse_tree_cache(tree_cache_json(entry))) << entry;
    EXPECT_FALSE(files) << entry;
  }
  EXPECT_FALSE(store::parse_tree_cache("{\"format_version\": \"1\", \"files\": {}}"));
}

// fuzz_cache_files: a sidecar that is JSON but not an object ("6") made value() throw
// type_error out of the partial-download scan, and so out of every later download of the file.
// (The engine's journal reader has typed look-ups; these inputs keep it so.)
TEST(FuzzRegressions, ResumeJournalOfAnotherShapeIsNotResumable) {
  for (std::string text :
       {"6\0\0\0\n07a30d783dfa663caf39e+6633720c8d4cfcd7e"s, "6"s, "[]"s, "null"s, "{\"etag\": 5, \"size\": 5}"s,
        "{\"etag\": \"e\", \"size\": -1}"s, "{\"etag\": \"e\", \"size\": 1e300}"s, "{\"etag\": \"e\"}"s,
        "{\"etag\": \"e\", \"size\": 9, \"done\": [[0, \"5\"]]}"s, "{\"etag\": \"e\", \"size\": 9, \"done\": {}}"s}) {
    std::optional<transfer::Journal> j;
    EXPECT_NO_THROW(j = transfer::parse_journal(text, 9)) << testing::PrintToString(text);
    EXPECT_FALSE(j) << testing::PrintToString(text);
  }
  transfer::Journal j{kSha256, 42, "https://cdn.example/x?a=1", "\"v1\"", {}};
  j.done.add(0, 10);
  j.done.add(20, 42);
  auto back = transfer::parse_journal(transfer::journal_to_json(j), 42);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->etag, kSha256);
  EXPECT_EQ(back->size, 42u);
  EXPECT_EQ(back->url, "https://cdn.example/x?a=1");
  EXPECT_EQ(back->validator, "\"v1\"");
  EXPECT_EQ(back->done.ranges(), j.done.ranges());
}

// fuzz_cache_files: writing a journal threw nlohmann's type_error (not UTF-8) for a Location or
// CDN ETag header with raw bytes; write_journal is best effort, but the throw went past
// download.cpp's clean-up and left a full-size temp file behind.
TEST(FuzzRegressions, ResumeJournalWritesAnyBytes) {
  transfer::Journal j{"b0c4\xcc", 7, "https://cdn.example/\xff\xfe", "\"\xc3\x28\"", {}};
  j.done.add(0, 3);
  std::string text;
  EXPECT_NO_THROW(text = transfer::journal_to_json(j));
  auto back = transfer::parse_journal(text, 7);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->size, 7u);
  EXPECT_EQ(back->done.ranges(), j.done.ranges());
  EXPECT_NE(back->etag, "b0c4\xcc");  // replaced: such a partial is never adopted

  test::TempDir dir;
  const auto temp = dir / "blob.0123abcd.incomplete";
  test::write_file(temp, "abcdefg");
  bool written = false;
  EXPECT_NO_THROW(written = transfer::write_journal(temp, j));
  EXPECT_TRUE(written);
  EXPECT_TRUE(transfer::parse_journal(test::read_file(transfer::sidecar_of(temp)), 7));
}

// fuzz_cache_files: a .metadata timestamp of "17123456781e40056" read as inf, so the local file
// counted as unmodified forever; a missing or trailing-garbage timestamp read as a number too.
TEST(FuzzRegressions, LocalMetadataNeedsAFiniteTimestamp) {
  const std::string head = std::string(kCommit) + "\n" + kSha256 + "\n";
  for (std::string ts : {"17123456781e40056\n"s, "inf\n"s, "nan\n"s, "\n"s, ""s, "1712345678.5x\n"s})
    EXPECT_FALSE(transfer::parse_local_metadata(head + ts)) << testing::PrintToString(ts);
  auto m = transfer::parse_local_metadata(std::string(kCommit) + "\r\n" + kSha256 + "\r\n1712345678.123456\r\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->commit, kCommit);
  EXPECT_EQ(m->etag, kSha256);
  EXPECT_DOUBLE_EQ(m->timestamp, 1712345678.123456);
  auto back = transfer::parse_local_metadata(transfer::format_local_metadata(*m));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->etag, kSha256);
}

// fuzz_hub_json: a tree entry whose "type" was an object made nlohmann's value() throw
// type_error (not a hubcache::Error) out of the listing; so did a numeric path or a string
// size, and a float size converted with undefined behaviour.
TEST(FuzzRegressions, TreePageWithMistypedFieldsIsAnHttpError) {
  const std::string oid = "\"oid\":\""s + kGitSha + "\"";
  for (std::string entry :
       {"{\"type\":{\"oid\":\""s + kSha256 + "\",\"size\":287060061,\"pointerSize\":135},\"xetHash\":\"" + kSha256 +
            "\"}",
        "{\"type\":\"file\",\"path\":5," + oid + "}", "{\"type\":\"file\",\"path\":\"a\",\"size\":\"5\"," + oid + "}",
        "{\"type\":\"file\",\"path\":\"a\",\"size\":1e300," + oid + "}",
        "{\"type\":\"file\",\"path\":\"a\",\"size\":-1," + oid + "}", "{\"type\":\"file\",\"path\":\"a\",\"oid\":[]}"s,
        "{\"type\":\"file\",\"path\":\"a\"," + oid + ",\"lfs\":{\"oid\":\"" + kSha256 + "\",\"size\":1.5}}"}) {
    const std::string page = "[{\"type\":\"file\"," + oid + ",\"size\":665,\"path\":\"config.json\"}," + entry + "]";
    try {
      hub::parse_tree_page(page);
      ADD_FAILURE() << "accepted " << page;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::http) << page;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw " << e.what() << " for " << page;
    }
  }
  auto files =
      hub::parse_tree_page("[{\"type\":\"file\"," + oid + ",\"size\":5,\"path\":\"m.bin\",\"lfs\":{\"oid\":\"" +
                           kSha256 + "\",\"size\":5,\"pointerSize\":134}}]");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].etag(), kSha256);
}

// fuzz_cache_files (the input was written by hand after reading the code; the target confirmed
// it): verify's own trees/<commit>.json reader threw nlohmann's type_error for a string
// format_version, so `hubcache verify` failed on such a file instead of ignoring it.
TEST(FuzzRegressions, VerifyTreeCacheReaderIgnoresMistypedVersion) {
  test::TempDir dir;
  const auto file = dir.path() / "trees" / (std::string(kCommit) + ".json");
  for (std::string text : {"{\"format_version\": \"1\", \"files\": {}}"s, "{\"format_version\": 1.5, \"files\": {}}"s,
                           "{\"format_version\": null, \"files\": {}}"s}) {
    test::write_file(file, text);
    std::optional<admin::TreeListing> listing;
    EXPECT_NO_THROW(listing = admin::read_tree_cache(dir.path(), kCommit)) << text;
    EXPECT_FALSE(listing) << text;
  }
  test::write_file(file, tree_cache_json("{\"size\": 5, \"blob_id\": \""s + kGitSha + "\"}"));
  auto listing = admin::read_tree_cache(dir.path(), kCommit);
  ASSERT_TRUE(listing);
  EXPECT_EQ(listing->size(), 2u);
}
