#include "http/client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "hubcache/settings.hpp"

namespace hubcache::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

constexpr std::size_t kMaxKeptBody = 16u << 20;  // API listings can be large; error bodies are small

}  // namespace

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const auto& [k, v] : items_)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

struct Client::Impl {
  CURL* curl = nullptr;
  // Per-transfer state, reached from the C callbacks.
  Response* response = nullptr;
  const BodySink* sink = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  bool sink_aborted = false;
  bool in_headers = true;
};

namespace {

size_t on_header(char* data, size_t size, size_t nitems, void* user) {
  auto* impl = static_cast<Client::Impl*>(user);
  std::string_view line(data, size * nitems);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.rfind("HTTP/", 0) == 0) {
    impl->response->headers.clear();  // a new response (e.g. after 100 Continue)
    return size * nitems;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    impl->response->headers.add(std::string(name), std::string(value));
  }
  return size * nitems;
}

size_t on_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* impl = static_cast<Client::Impl*>(user);
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(impl->curl, CURLINFO_RESPONSE_CODE, &status);
  impl->response->status = status;
  if (impl->sink && *impl->sink && status >= 200 && status < 300) {
    if (!(*impl->sink)(status, impl->response->headers, data, n)) {
      impl->sink_aborted = true;
      return 0;
    }
    return n;
  }
  if (impl->response->body.size() < kMaxKeptBody) impl->response->body.append(data, n);
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* impl = static_cast<Client::Impl*>(user);
  return impl->cancel && impl->cancel->load() ? 1 : 0;
}

}  // namespace

Client::Client() : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->curl = curl_easy_init();
  if (!impl_->curl) throw TransportError("cannot initialise libcurl", false, false, false);
}

Client::~Client() {
  if (impl_->curl) curl_easy_cleanup(impl_->curl);
}

Response Client::perform(const Request& request, const BodySink& sink) {
  CURL* c = impl_->curl;
  curl_easy_reset(c);  // keeps the connection cache: keep-alive across requests
  Response response;
  impl_->response = &response;
  impl_->sink = &sink;
  impl_->cancel = request.cancel;
  impl_->sink_aborted = false;

  const Settings& settings = Settings::get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!settings.ca_bundle.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, settings.ca_bundle.c_str());
  if (!settings.ca_dir.empty()) curl_easy_setopt(c, CURLOPT_CAPATH, settings.ca_dir.c_str());
  if (!settings.http_proxy_upper.empty() && request.url.rfind("http://", 0) == 0)
    curl_easy_setopt(c, CURLOPT_PROXY, settings.http_proxy_upper.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout * 1000));
  // A read stall: less than 1 byte/s for read_timeout seconds abandons the transfer.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(request.read_timeout)));
  if (request.max_bytes_per_second)
    curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, static_cast<curl_off_t>(request.max_bytes_per_second));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, impl_.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, impl_.get());
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, impl_.get());
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);

  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  curl_slist* headers = nullptr;
  for (const auto& [k, v] : request.headers) headers = curl_slist_append(headers, (k + ": " + v).c_str());
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  response.status = status;
  impl_->response = nullptr;
  impl_->sink = nullptr;
  if (rc != CURLE_OK) {
    bool cancelled = rc == CURLE_ABORTED_BY_CALLBACK;
    bool aborted = rc == CURLE_WRITE_ERROR && impl_->sink_aborted;
    bool tls = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
               rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ISSUER_ERROR;
    std::string message = curl_easy_strerror(rc);
    if (tls) message += " (TLS verification failed; set SSL_CERT_FILE or CURL_CA_BUNDLE to your CA bundle)";
    if (rc == CURLE_OPERATION_TIMEDOUT) message += " (timed out)";
    throw TransportError(message, !cancelled && !aborted && !tls, cancelled, aborted);
  }
  return response;
}

namespace {
struct Url {
  CURLU* h = curl_url();
  ~Url() { curl_url_cleanup(h); }
  std::string get(CURLUPart part, unsigned flags = 0) const {
    char* v = nullptr;
    if (curl_url_get(h, part, &v, flags) != CURLUE_OK || !v) return {};
    std::string out(v);
    curl_free(v);
    return out;
  }
};
}  // namespace

std::string origin_of(std::string_view url) {
  global_init();
  Url u;
  if (curl_url_set(u.h, CURLUPART_URL, std::string(url).c_str(), 0) != CURLUE_OK) return std::string(url);
  std::string host = u.get(CURLUPART_HOST);
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return u.get(CURLUPART_SCHEME) + "://" + host + ":" + u.get(CURLUPART_PORT, CURLU_DEFAULT_PORT);
}

std::string resolve_location(std::string_view base_url, std::string_view location) {
  global_init();
  Url u;
  if (curl_url_set(u.h, CURLUPART_URL, std::string(base_url).c_str(), 0) != CURLUE_OK) return std::string(location);
  if (curl_url_set(u.h, CURLUPART_URL, std::string(location).c_str(), 0) != CURLUE_OK) return std::string(location);
  return u.get(CURLUPART_URL);
}

bool is_relative_location(std::string_view location) {
  if (location.rfind("//", 0) == 0) return false;
  auto colon = location.find(':');
  auto slash = location.find('/');
  return colon == std::string_view::npos || (slash != std::string_view::npos && slash < colon);
}

}  // namespace hubcache::http
