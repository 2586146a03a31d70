#include <gtest/gtest.h>

#include "support/test_support.hpp"
#include "util/hash.hpp"

using namespace hubcache;
using namespace hubcache::util;

TEST(Hash, GitBlobSha1Vectors) {
  EXPECT_EQ(git_blob_sha1_hex("Hello, World!"), "b45ef6fec89518d314f546fd6c3025367b721684");
  EXPECT_EQ(git_blob_sha1_hex(""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
}

TEST(Hash, Sha256Vector) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Hash, StreamingEqualsOneShot) {
  std::string data(3 * 1000 * 1000 + 7, 'x');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  Hasher h(HashKind::git_blob_sha1, data.size());
  for (std::size_t off = 0; off < data.size(); off += 65537) h.update(data.substr(off, 65537));
  EXPECT_EQ(h.hex_digest(), git_blob_sha1_hex(data));
}

TEST(Hash, HashFileAndKindFromEtag) {
  test::TempDir dir;
  test::write_file(dir / "f", "Hello, World!");
  EXPECT_EQ(hash_file(dir / "f", HashKind::git_blob_sha1), "b45ef6fec89518d314f546fd6c3025367b721684");
  HashKind kind;
  EXPECT_TRUE(hash_kind_for_etag("b45ef6fec89518d314f546fd6c3025367b721684", kind));
  EXPECT_EQ(kind, HashKind::git_blob_sha1);
  EXPECT_TRUE(hash_kind_for_etag(sha256_hex("x"), kind));
  EXPECT_EQ(kind, HashKind::sha256);
  EXPECT_FALSE(hash_kind_for_etag("abc", kind));
  EXPECT_FALSE(hash_kind_for_etag("\"b45ef6fec89518d314f546fd6c3025367b72168\"", kind));
}
