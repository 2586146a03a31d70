// hubcache env: the resolved settings. Says whether a token is set, never the token.
#include <nlohmann/json.hpp>
#include <iostream>

#include "cli/command.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/settings.hpp"

namespace hubcache::cli {
namespace {

int run(const RepoArgs& args, Format format) {
  const Settings& s = Settings::get();
  Options options = to_options(args);
  auto root = resolve_cache_root(options);
  std::string token = s.token ? "set (from " + s.token_source + ")" : "not set";
  std::string ignored = s.token && s.disable_implicit_token ? " (not sent: HF_HUB_DISABLE_IMPLICIT_TOKEN)" : "";
  if (format == Format::json) {
    nlohmann::json j = {{"version", HUBCACHE_VERSION},
                        {"cache_root", root.string()},
                        {"hf_home", s.hf_home.string()},
                        {"endpoint", s.endpoint},
                        {"offline", s.offline},
                        {"token_set", s.token.has_value()},
                        {"token_source", s.token ? s.token_source : ""},
                        {"token_path", s.token_path.string()},
                        {"disable_symlinks", s.disable_symlinks},
                        {"etag_timeout", s.etag_timeout},
                        {"download_timeout", s.download_timeout}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "hubcache version: " << HUBCACHE_VERSION << "\n"
            << "cache root:       " << root.string() << "\n"
            << "HF_HOME:          " << s.hf_home.string() << "\n"
            << "endpoint:         " << s.endpoint << "\n"
            << "offline:          " << (s.offline ? "yes" : "no") << "\n"
            << "token:            " << token << ignored << "\n"
            << "token file:       " << s.token_path.string() << "\n"
            << "symlinks:         " << (s.disable_symlinks ? "disabled (HF_HUB_DISABLE_SYMLINKS)" : "enabled")
            << "\n"
            << "metadata timeout: " << s.etag_timeout << " s (HF_HUB_ETAG_TIMEOUT)\n"
            << "download timeout: " << s.download_timeout << " s (HF_HUB_DOWNLOAD_TIMEOUT)\n";
  return 0;
}

Registrar reg{{"env", "Show the resolved settings: cache root, endpoint, offline, token presence", 90,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<RepoArgs>();
                 auto format = std::make_shared<Format>(Format::human);
                 add_cache_dir_flag(sub, *args);
                 add_format_flags(sub, *format);
                 return [args, format] { return run(*args, *format); };
               }}};

}  // namespace
}  // namespace hubcache::cli
