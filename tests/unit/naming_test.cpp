// Reference Appendix C vectors and the validation rules of layout/naming.
#include <gtest/gtest.h>

#include "hubcache/error.hpp"
#include "layout/naming.hpp"

using namespace hubcache;
using namespace hubcache::layout;

TEST(Naming, RepoFolderNameVectors) {
  EXPECT_EQ(repo_folder_name("julien-c/EsperBERTo-small", RepoType::model), "models--julien-c--EsperBERTo-small");
  EXPECT_EQ(repo_folder_name("gpt2", RepoType::model), "models--gpt2");
  EXPECT_EQ(repo_folder_name("google/fleurs", RepoType::dataset), "datasets--google--fleurs");
  EXPECT_EQ(repo_folder_name("dalle-mini/dalle-mini", RepoType::space), "spaces--dalle-mini--dalle-mini");
}

TEST(Naming, ParseRepoFolderNameRoundTrips) {
  auto parsed = parse_repo_folder_name("datasets--google--fleurs");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->first, RepoType::dataset);
  EXPECT_EQ(parsed->second, "google/fleurs");
  EXPECT_EQ(parse_repo_folder_name("models--gpt2")->second, "gpt2");
  EXPECT_FALSE(parse_repo_folder_name("kernels--a--b"));
  EXPECT_FALSE(parse_repo_folder_name("model--a--b"));
  EXPECT_FALSE(parse_repo_folder_name("blobs"));
  EXPECT_FALSE(parse_repo_folder_name(".locks"));
}

TEST(Naming, ResolveUrlVector) {
  EXPECT_EQ(resolve_url("https://huggingface.co", RepoType::dataset, "google/fleurs", "refs/pr/1", "data/a b.json"),
            "https://huggingface.co/datasets/google/fleurs/resolve/refs%2Fpr%2F1/data/a%20b.json");
  EXPECT_EQ(resolve_url("http://127.0.0.1:8080/", RepoType::model, "gpt2", "main", "config.json"),
            "http://127.0.0.1:8080/gpt2/resolve/main/config.json");
  EXPECT_EQ(resolve_url("https://h", RepoType::model, "a/b", "main", "d/\xc3\xa9.txt"),
            "https://h/a/b/resolve/main/d/%C3%A9.txt");
}

TEST(Naming, QuoteAndUnquote) {
  EXPECT_EQ(quote("refs/pr/1", ""), "refs%2Fpr%2F1");
  EXPECT_EQ(quote("a b/c~d", "/"), "a%20b/c~d");
  EXPECT_EQ(unquote("refs%2Fpr%2F1"), "refs/pr/1");
  EXPECT_EQ(unquote("100%"), "100%");
  EXPECT_EQ(unquote("%zz"), "%zz");
}

TEST(Naming, EtagNormalisation) {
  EXPECT_EQ(normalize_etag("W/\"abc\""), "abc");
  EXPECT_EQ(normalize_etag("\"abc\""), "abc");
  EXPECT_EQ(normalize_etag("abc"), "abc");
}

TEST(Naming, RelativeLinkTargets) {
  std::filesystem::path repo = "/c/models--a--b";
  EXPECT_EQ(relative_link_target(repo / "snapshots/c1/README.md",
                                 repo / "blobs/d7edf6bd2a681fb0175f7735299831ee1b22b812")
                .string(),
            "../../blobs/d7edf6bd2a681fb0175f7735299831ee1b22b812");
  EXPECT_EQ(relative_link_target(repo / "snapshots/c1/onnx/model.onnx", repo / "blobs/abc").string(),
            "../../../blobs/abc");
}

TEST(Naming, CommitHash) {
  EXPECT_TRUE(is_commit_hash("3bc9ba7f84a5d8359a34ef3a7d5e9f6bec349d91"));
  EXPECT_FALSE(is_commit_hash("3bc9ba7"));
  EXPECT_FALSE(is_commit_hash("3BC9BA7F84A5D8359A34EF3A7D5E9F6BEC349D91"));
  EXPECT_FALSE(is_commit_hash("main"));
}

TEST(Naming, RepoIdValidation) {
  EXPECT_NO_THROW(validate_repo_id("xiaoyao9184/image-faulty"));
  EXPECT_NO_THROW(validate_repo_id("gpt2"));
  EXPECT_NO_THROW(validate_repo_id("org/name.v1_2"));
  for (const char* bad : {"", "a/b/c", "a--b/c", "a/b..c", "a/b.git", "../x", "a/ b", "-a/b", "a/b-", "/a"}) {
    EXPECT_THROW(validate_repo_id(bad), Error) << bad;
  }
  try {
    validate_repo_id("a/b/c");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
  }
}

TEST(Naming, FileNameValidationRefusesEscapes) {
  EXPECT_NO_THROW(validate_filename("config.json"));
  EXPECT_NO_THROW(validate_filename("onnx/sub/model.onnx"));
  EXPECT_NO_THROW(validate_filename("a..b.txt"));
  for (const char* bad : {"", "../x", "a/../../x", "/etc/passwd", "C:/x", "c:x", "a\\b", "\\\\server\\share",
                          "a//b", "dir/", "./a"}) {
    EXPECT_THROW(validate_filename(bad), Error) << bad;
  }
}

TEST(Naming, RevisionValidation) {
  EXPECT_NO_THROW(validate_revision("main"));
  EXPECT_NO_THROW(validate_revision("refs/pr/1"));
  for (const char* bad : {"", "../main", "a/../b", "/main", "main/", "a\\b"})
    EXPECT_THROW(validate_revision(bad), Error) << bad;
}
