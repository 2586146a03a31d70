// hubcache/settings.hpp: everything hubcache reads from the environment, in one place.
//
// Variables are read once, the first time Settings::get() is called, with the
// same names and precedence as Python huggingface_hub (constants.py). Empty
// variables count as unset.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

// Exported by libhubcache.so, which is built with hidden visibility (cmake/hubcache.map.in).
#pragma GCC visibility push(default)
namespace hubcache {

struct Settings {
  // $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
  std::filesystem::path hf_home;
  // HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub, expanded and absolute.
  std::filesystem::path hub_cache;
  // $XDG_CACHE_HOME, else ~/.cache (root of Layout::flat caches).
  std::filesystem::path user_cache;
  // HF_ENDPOINT without trailing '/', else https://huggingface.co.
  std::string endpoint = "https://huggingface.co";
  // HF_TOKEN > HUGGING_FACE_HUB_TOKEN > the token file (HF_TOKEN_PATH, else $HF_HOME/token).
  std::optional<std::string> token;
  // Where the token came from ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN" or the file path).
  std::string token_source;
  std::filesystem::path token_path;
  bool offline = false;                 // HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE
  bool disable_symlinks = false;        // HF_HUB_DISABLE_SYMLINKS
  bool disable_implicit_token = false;  // HF_HUB_DISABLE_IMPLICIT_TOKEN
  bool disable_progress_bars = false;   // HF_HUB_DISABLE_PROGRESS_BARS
  double etag_timeout = 10;             // HF_HUB_ETAG_TIMEOUT, seconds (metadata requests)
  double download_timeout = 10;         // HF_HUB_DOWNLOAD_TIMEOUT, seconds (connect/read on GET)
  std::string user_agent_origin;        // HF_HUB_USER_AGENT_ORIGIN
  // TLS trust: SSL_CERT_FILE > CURL_CA_BUNDLE > REQUESTS_CA_BUNDLE; SSL_CERT_DIR. Empty: system default.
  // Verification itself is always on.
  std::string ca_bundle;
  std::string ca_dir;
  // HTTP_PROXY for http:// URLs when lowercase http_proxy is unset (libcurl reads the
  // other proxy variables, HTTPS_PROXY, ALL_PROXY and NO_PROXY, itself).
  std::string http_proxy_upper;
  // HUBCACHE_RETRY_BASE_MS: first backoff delay of retried requests (default 1000 ms;
  // doubles per try, capped at 8x). Lower it in tests, raise it behind flaky links.
  int retry_base_ms = 1000;
  // HUBCACHE_MAX_RETRIES: attempts after the first one for retryable failures (default 5).
  int max_retries = 5;

  // The process-wide settings, read from the environment on first use.
  static const Settings& get();
  // Settings from any variable source (tests use this). `getenv` returns
  // nullptr for unset variables. Reads the token file if needed.
  static Settings from_env(const std::function<const char*(const char*)>& getenv);
};

// Expands a leading "~" and $VAR / ${VAR} references (unset variables are left
// as written, as Python's os.path.expandvars does).
std::string expand_user_and_vars(const std::string& path,
                                 const std::function<const char*(const char*)>& getenv);

}  // namespace hubcache
#pragma GCC visibility pop
