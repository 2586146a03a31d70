#include "hubcache/settings.hpp"

#include <gtest/gtest.h>

#include <map>

#include "support/test_support.hpp"

using namespace hubcache;

namespace {
Settings settings_of(const std::map<std::string, std::string>& vars) {
  return Settings::from_env([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}
}  // namespace

TEST(Settings, DefaultCacheIsUnderHome) {
  auto s = settings_of({{"HOME", "/home/u"}});
  EXPECT_EQ(s.hub_cache, "/home/u/.cache/huggingface/hub");
  EXPECT_EQ(s.hf_home, "/home/u/.cache/huggingface");
  EXPECT_EQ(s.endpoint, "https://huggingface.co");
  EXPECT_FALSE(s.offline);
  EXPECT_FALSE(s.token);
}

TEST(Settings, PrecedenceOfCacheVariables) {
  std::map<std::string, std::string> v{{"HOME", "/h"}, {"XDG_CACHE_HOME", "/x"}};
  EXPECT_EQ(settings_of(v).hub_cache, "/x/huggingface/hub");
  v["HF_HOME"] = "/hfhome";
  EXPECT_EQ(settings_of(v).hub_cache, "/hfhome/hub");
  v["HUGGINGFACE_HUB_CACHE"] = "/legacy";
  EXPECT_EQ(settings_of(v).hub_cache, "/legacy");
  v["HF_HUB_CACHE"] = "/new";
  EXPECT_EQ(settings_of(v).hub_cache, "/new");
}

TEST(Settings, UserCacheDirForFlatCaches) {
  EXPECT_EQ(settings_of({{"HOME", "/h"}}).user_cache, "/h/.cache");
  EXPECT_EQ(settings_of({{"HOME", "/h"}, {"XDG_CACHE_HOME", "/x"}}).user_cache, "/x");
  EXPECT_EQ(settings_of({{"HOME", "/h"}, {"XDG_CACHE_HOME", ""}}).user_cache, "/h/.cache");
  // HF_HOME moves the hub cache, not the user cache dir.
  EXPECT_EQ(settings_of({{"HOME", "/h"}, {"HF_HOME", "/hf"}}).user_cache, "/h/.cache");
}

TEST(Settings, EmptyVariablesCountAsUnset) {
  auto s = settings_of({{"HOME", "/h"}, {"HF_HUB_CACHE", ""}, {"HF_HOME", ""}, {"HF_ENDPOINT", ""}});
  EXPECT_EQ(s.hub_cache, "/h/.cache/huggingface/hub");
  EXPECT_EQ(s.endpoint, "https://huggingface.co");
}

TEST(Settings, ExpandsTildeAndVariablesAndMakesAbsolute) {
  auto s = settings_of({{"HOME", "/h"}, {"BASE", "/data"}, {"HF_HUB_CACHE", "$BASE/hf/${BASE}"}});
  EXPECT_EQ(s.hub_cache, "/data/hf/data");
  s = settings_of({{"HOME", "/h"}, {"HF_HOME", "~/hf"}});
  EXPECT_EQ(s.hub_cache, "/h/hf/hub");
  s = settings_of({{"HOME", "/h"}, {"HF_HUB_CACHE", "rel/dir"}});
  EXPECT_TRUE(s.hub_cache.is_absolute());
  EXPECT_EQ(expand_user_and_vars("$UNSET/x", [](const char*) { return nullptr; }), "$UNSET/x");
}

TEST(Settings, EndpointBooleansAndTimeouts) {
  auto s = settings_of({{"HOME", "/h"},
                        {"HF_ENDPOINT", "http://127.0.0.1:9/"},
                        {"HF_HUB_OFFLINE", "yes"},
                        {"HF_HUB_DISABLE_SYMLINKS", "1"},
                        {"HF_HUB_ETAG_TIMEOUT", "3"},
                        {"HF_HUB_DOWNLOAD_TIMEOUT", "0"}});
  EXPECT_EQ(s.endpoint, "http://127.0.0.1:9");
  EXPECT_TRUE(s.offline);
  EXPECT_TRUE(s.disable_symlinks);
  EXPECT_EQ(s.etag_timeout, 3);
  EXPECT_EQ(s.download_timeout, 10);  // 0 falls back to the default, as in Python
  EXPECT_FALSE(settings_of({{"HOME", "/h"}, {"HF_HUB_OFFLINE", "0"}}).offline);
  EXPECT_TRUE(settings_of({{"HOME", "/h"}, {"TRANSFORMERS_OFFLINE", "TRUE"}}).offline);
}

TEST(Settings, TokenPrecedenceAndFile) {
  test::TempDir dir;
  test::write_file(dir / "hf/token", "  hf_fromfile\r\n");
  std::map<std::string, std::string> v{{"HOME", "/h"}, {"HF_HOME", (dir / "hf").string()}};
  auto s = settings_of(v);
  ASSERT_TRUE(s.token);
  EXPECT_EQ(*s.token, "hf_fromfile");
  EXPECT_EQ(s.token_source, (dir / "hf/token").string());
  v["HUGGING_FACE_HUB_TOKEN"] = "hf_legacy";
  EXPECT_EQ(*settings_of(v).token, "hf_legacy");
  v["HF_TOKEN"] = "hf_new\n";
  EXPECT_EQ(*settings_of(v).token, "hf_new");
  EXPECT_EQ(settings_of(v).token_source, "HF_TOKEN");
  test::write_file(dir / "other", "hf_other");
  auto t = settings_of({{"HOME", "/h"}, {"HF_TOKEN_PATH", (dir / "other").string()}});
  EXPECT_EQ(*t.token, "hf_other");
}
