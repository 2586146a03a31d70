// The tree listing (src/hub/repo_api) and trees/<commit>.json (src/store/tree_cache):
// what the Hub sends, and the exact bytes Python's json.dump(indent=1) writes.
#include <gtest/gtest.h>

#include "hub/repo_api.hpp"
#include "hubcache/error.hpp"
#include "store/tree_cache.hpp"
#include "support/test_support.hpp"

namespace hubcache::test {
namespace {

const std::string kSha1 = "e5698f9a721147f2090edf7da4892e23da00d5be";
const std::string kSha256 = "cd44947308b4b22228767cab8addd523d1de22abd9b23a10808e5fc295202e4f";
const std::string kXet = "f857c20483a87a6737b06f718d340429fc080f73c00f6d46b2030b58734a61e4";

TEST(HubTree, PageKeepsFilesWithTheirHashesSizesAndXetHash) {
  // The recorded shape of a real page (hub-http-api.md §4.2).
  const std::string page = R"([
    {"type":"directory","oid":"57fddbfaa4d48e0e641336a82a6ed99d1ab2da9b","size":0,"path":"regression"},
    {"type":"file","oid":"c9176dbf0ba8556845af9072b3dd39d06764e8ba","size":1048576,
     "lfs":{"oid":")" + kSha256 +
                           R"(","size":1048576,"pointerSize":132},
     "xetHash":")" + kXet + R"(","path":"regression/ref-lfs.bin"},
    {"type":"file","oid":")" +
                           kSha1 + R"(","size":186,"path":"regression/ref-regular.txt","xetHash":"not-hex"}])";
  auto files = hub::parse_tree_page(page);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, "regression/ref-lfs.bin");
  EXPECT_EQ(files[0].etag(), kSha256);
  EXPECT_EQ(files[0].blob_id, "c9176dbf0ba8556845af9072b3dd39d06764e8ba");
  EXPECT_EQ(files[0].size, 1048576u);
  EXPECT_EQ(files[0].xet_hash, kXet);
  EXPECT_EQ(files[1].etag(), kSha1);
  EXPECT_EQ(files[1].xet_hash, "") << "an invalid xetHash is not kept";
  EXPECT_THROW(hub::parse_tree_page(R"([{"type":"file","oid":")" + kSha1 + R"(","size":1,"path":"../x"}])"), Error);
  EXPECT_THROW(hub::parse_tree_page("{}"), Error);
}

TEST(HubTree, NextLinkOfAPaginatedListing) {
  EXPECT_EQ(hub::next_link("<http://127.0.0.1:1/api/models/a/b/tree/c?cursor=xyz>; rel=\"next\""),
            "http://127.0.0.1:1/api/models/a/b/tree/c?cursor=xyz");
  EXPECT_EQ(hub::next_link("<http://h/prev>; rel=\"prev\", <http://h/next>; rel=\"next\""), "http://h/next");
  EXPECT_EQ(hub::next_link("<http://h/last>; rel=\"last\""), std::nullopt);
}

TEST(HubTree, TreesFileHasPythonsExactBytesAndRoundTrips) {
  TempDir dir;
  std::vector<hub::TreeFile> files(3);
  files[0].path = "z.txt";
  files[0].size = 186;
  files[0].blob_id = kSha1;
  files[1].path = "model.safetensors";
  files[1].size = 1048576;
  files[1].blob_id = "c9176dbf0ba8556845af9072b3dd39d06764e8ba";
  files[1].lfs_sha256 = kSha256;
  files[1].lfs_size = 1048576;
  files[1].xet_hash = kXet;
  files[2].path = "caf\xc3\xa9.json";
  files[2].size = 2;
  files[2].blob_id = kSha1;
  const auto path = dir / "trees/c.json";
  store::write_tree_file(path, files);
  // What json.dump(payload, f, indent=1) writes: sorted paths, Python's key order per
  // entry, ASCII only (ensure_ascii), no trailing newline.
  const std::string expected =
      "{\n"
      " \"format_version\": 1,\n"
      " \"files\": {\n"
      "  \"caf\\u00e9.json\": {\n"
      "   \"size\": 2,\n"
      "   \"blob_id\": \"" +
      kSha1 +
      "\"\n"
      "  },\n"
      "  \"model.safetensors\": {\n"
      "   \"size\": 1048576,\n"
      "   \"blob_id\": \"c9176dbf0ba8556845af9072b3dd39d06764e8ba\",\n"
      "   \"lfs_sha256\": \"" +
      kSha256 +
      "\",\n"
      "   \"lfs_size\": 1048576,\n"
      "   \"xet_hash\": \"" +
      kXet +
      "\"\n"
      "  },\n"
      "  \"z.txt\": {\n"
      "   \"size\": 186,\n"
      "   \"blob_id\": \"" +
      kSha1 +
      "\"\n"
      "  }\n"
      " }\n"
      "}";
  EXPECT_EQ(read_file(path), expected);
  auto back = store::read_tree_file(path);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 3u);
  for (const auto& f : *back)
    if (f.path == "model.safetensors") {
      EXPECT_EQ(f.etag(), kSha256);
      EXPECT_EQ(f.xet_hash, kXet);
    }

  // Python ignores a file with an unknown format_version or an invalid xet_hash; so do we.
  write_file(path, R"({"format_version": 2, "files": {}})");
  EXPECT_FALSE(store::read_tree_file(path));
  write_file(path,
             R"({"format_version": 1, "files": {"a": {"size": 1, "blob_id": ")" + kSha1 + R"(", "xet_hash": "zz"}}})");
  EXPECT_FALSE(store::read_tree_file(path));
}

}  // namespace
}  // namespace hubcache::test
