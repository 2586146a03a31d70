#include "hubcache/settings.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "util/fs.hpp"

namespace hubcache {

namespace {

using Getenv = std::function<const char*(const char*)>;

// Empty variables count as unset (documented choice; Python would use "").
std::optional<std::string> var(const Getenv& getenv, const char* name) {
  const char* v = getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

bool truthy(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string up = *v;
  std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return std::toupper(c); });
  return up == "1" || up == "ON" || up == "YES" || up == "TRUE";
}

double seconds(const std::optional<std::string>& v, double fallback) {
  if (!v) return fallback;
  char* end = nullptr;
  double d = std::strtod(v->c_str(), &end);
  if (end == v->c_str() || d <= 0) return fallback;  // Python: `int(v) or default`
  return d;
}

std::string home_dir(const Getenv& getenv) {
  if (auto h = var(getenv, "HOME")) return *h;
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return "/";
}

std::filesystem::path absolute_path(const std::string& p) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(p, ec);
  return (ec ? std::filesystem::path(p) : abs).lexically_normal();
}

std::string clean_token(std::string t) {
  t.erase(std::remove(t.begin(), t.end(), '\r'), t.end());
  t.erase(std::remove(t.begin(), t.end(), '\n'), t.end());
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  t.erase(t.begin(), std::find_if(t.begin(), t.end(), not_space));
  t.erase(std::find_if(t.rbegin(), t.rend(), not_space).base(), t.end());
  return t;
}

}  // namespace

std::string expand_user_and_vars(const std::string& path, const Getenv& getenv) {
  std::string s = path;
  if (!s.empty() && s[0] == '~' && (s.size() == 1 || s[1] == '/')) s = home_dir(getenv) + s.substr(1);
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '$') {
      out += s[i];
      continue;
    }
    std::size_t j = i + 1;
    bool braced = j < s.size() && s[j] == '{';
    if (braced) ++j;
    std::size_t k = j;
    while (k < s.size() && (std::isalnum(static_cast<unsigned char>(s[k])) || s[k] == '_')) ++k;
    if (k == j || (braced && (k >= s.size() || s[k] != '}'))) {
      out += s[i];
      continue;
    }
    std::string name = s.substr(j, k - j);
    std::size_t end = braced ? k + 1 : k;
    if (const char* v = getenv(name.c_str()))
      out += v;
    else
      out += s.substr(i, end - i);  // unset: left as written
    i = end - 1;
  }
  return out;
}

Settings Settings::from_env(const Getenv& getenv) {
  Settings s;
  auto expand = [&](const std::string& p) { return absolute_path(expand_user_and_vars(p, getenv)); };

  const std::string home = home_dir(getenv);
  s.user_cache = expand(var(getenv, "XDG_CACHE_HOME").value_or(home + "/.cache"));
  if (auto v = var(getenv, "HF_HOME"))
    s.hf_home = expand(*v);
  else
    s.hf_home = s.user_cache / "huggingface";

  if (auto v = var(getenv, "HF_HUB_CACHE"))
    s.hub_cache = expand(*v);
  else if (auto legacy = var(getenv, "HUGGINGFACE_HUB_CACHE"))
    s.hub_cache = expand(*legacy);
  else
    s.hub_cache = s.hf_home / "hub";

  if (auto v = var(getenv, "HF_ENDPOINT")) {
    s.endpoint = *v;
    while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
  }

  s.token_path = var(getenv, "HF_TOKEN_PATH") ? expand(*var(getenv, "HF_TOKEN_PATH")) : s.hf_home / "token";
  if (auto t = var(getenv, "HF_TOKEN"); t && !clean_token(*t).empty()) {
    s.token = clean_token(*t);
    s.token_source = "HF_TOKEN";
  } else if (auto legacy = var(getenv, "HUGGING_FACE_HUB_TOKEN"); legacy && !clean_token(*legacy).empty()) {
    s.token = clean_token(*legacy);
    s.token_source = "HUGGING_FACE_HUB_TOKEN";
  } else if (auto file = util::read_small_file(s.token_path); file && !clean_token(*file).empty()) {
    s.token = clean_token(*file);
    s.token_source = s.token_path.string();
  }

  s.offline = truthy(var(getenv, "HF_HUB_OFFLINE")) || truthy(var(getenv, "TRANSFORMERS_OFFLINE"));
  s.disable_symlinks = truthy(var(getenv, "HF_HUB_DISABLE_SYMLINKS"));
  s.disable_implicit_token = truthy(var(getenv, "HF_HUB_DISABLE_IMPLICIT_TOKEN"));
  s.disable_progress_bars = truthy(var(getenv, "HF_HUB_DISABLE_PROGRESS_BARS"));
  s.etag_timeout = seconds(var(getenv, "HF_HUB_ETAG_TIMEOUT"), 10);
  s.download_timeout = seconds(var(getenv, "HF_HUB_DOWNLOAD_TIMEOUT"), 10);
  s.user_agent_origin = var(getenv, "HF_HUB_USER_AGENT_ORIGIN").value_or("");
  for (const char* name : {"SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"}) {
    if (auto v = var(getenv, name)) {
      s.ca_bundle = *v;
      break;
    }
  }
  s.ca_dir = var(getenv, "SSL_CERT_DIR").value_or("");
  if (auto v = var(getenv, "HUBCACHE_RETRY_BASE_MS")) s.retry_base_ms = std::max(0, std::atoi(v->c_str()));
  if (auto v = var(getenv, "HUBCACHE_MAX_RETRIES")) s.max_retries = std::max(0, std::atoi(v->c_str()));
  if (!var(getenv, "http_proxy")) s.http_proxy_upper = var(getenv, "HTTP_PROXY").value_or("");
  return s;
}

const Settings& Settings::get() {
  static const Settings settings = from_env([](const char* name) { return std::getenv(name); });
  return settings;
}

}  // namespace hubcache
