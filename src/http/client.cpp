#include "http/client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <unordered_map>

#include "http/headers.hpp"
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

namespace {

// DNS answers and TLS sessions are shared by every handle of the process, so the
// extra connections of a ranged download resume the first one's TLS session
// instead of paying a full handshake each. (Connections themselves stay per
// thread: sharing them across threads is where libcurl has had bugs.)
class Share {
 public:
  static CURLSH* get() {
    // Leaked on purpose: handles on other threads may outlive any static order.
    static Share* share = new Share;
    return share->sh_;
  }

 private:
  Share() {
    sh_ = curl_share_init();
    if (!sh_) return;
    curl_share_setopt(sh_, CURLSHOPT_LOCKFUNC, lock);
    curl_share_setopt(sh_, CURLSHOPT_UNLOCKFUNC, unlock);
    curl_share_setopt(sh_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(sh_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(sh_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  static void lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Share*>(user)->mutex_for(data).lock();
  }
  static void unlock(CURL*, curl_lock_data data, void* user) { static_cast<Share*>(user)->mutex_for(data).unlock(); }
  std::mutex& mutex_for(curl_lock_data data) {
    return data == CURL_LOCK_DATA_DNS ? dns_ : data == CURL_LOCK_DATA_SSL_SESSION ? ssl_ : other_;
  }

  CURLSH* sh_ = nullptr;
  std::mutex dns_, ssl_, other_;
};

// One transfer: its easy handle and the state its C callbacks reach.
struct Xfer {
  Multi::Id id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  Request request;  // owns the URL and POST body for libcurl
  StreamSink sink;
  Response response;
  bool sink_aborted = false;
};

size_t on_header(char* data, size_t size, size_t nitems, void* user) {
  auto* x = static_cast<Xfer*>(user);
  std::string_view line(data, size * nitems);
  if (line.rfind("HTTP/", 0) == 0) {
    x->response.headers.clear();  // a new response (e.g. after 100 Continue)
    return size * nitems;
  }
  if (auto header = parse_header_line(line))
    x->response.headers.add(std::move(header->first), std::move(header->second));
  return size * nitems;
}

size_t on_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* x = static_cast<Xfer*>(user);
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  x->response.status = status;
  if (x->sink && status >= 200 && status < 300) {
    switch (x->sink(status, x->response.headers, data, n)) {
      case Flow::proceed:
        return n;
      case Flow::pause:
        return CURL_WRITEFUNC_PAUSE;
      case Flow::abort:
        break;
    }
    x->sink_aborted = true;
    return 0;
  }
  if (x->response.body.size() < kMaxKeptBody) x->response.body.append(data, n);
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* x = static_cast<Xfer*>(user);
  return x->request.cancel && x->request.cancel->load() ? 1 : 0;
}

void configure(Xfer& x) {
  CURL* c = x.easy;
  const Request& request = x.request;
  const Settings& settings = Settings::get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_PRIVATE, &x);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  // HTTP/2 over TLS when the server offers it (ALPN), HTTP/1.1 otherwise.
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  if (CURLSH* sh = Share::get()) curl_easy_setopt(c, CURLOPT_SHARE, sh);
  if (!settings.ca_bundle.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, settings.ca_bundle.c_str());
  if (!settings.ca_dir.empty()) curl_easy_setopt(c, CURLOPT_CAPATH, settings.ca_dir.c_str());
  if (!settings.http_proxy_upper.empty() && request.url.rfind("http://", 0) == 0)
    curl_easy_setopt(c, CURLOPT_PROXY, settings.http_proxy_upper.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout * 1000));
  if (request.read_timeout > 0) {
    // A read stall: less than 1 byte/s for read_timeout seconds abandons the transfer.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(request.read_timeout)));
  }
  if (request.max_bytes_per_second)
    curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE, static_cast<curl_off_t>(request.max_bytes_per_second));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
  // Large enough for few callbacks per megabyte, small enough for many connections.
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);

  if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  for (const auto& [k, v] : request.headers) x.headers = curl_slist_append(x.headers, (k + ": " + v).c_str());
  x.headers = curl_slist_append(x.headers, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, x.headers);
}

TransportError transport_error(CURLcode rc, const Xfer& x) {
  bool cancelled = rc == CURLE_ABORTED_BY_CALLBACK;
  bool aborted = rc == CURLE_WRITE_ERROR && x.sink_aborted;
  bool tls = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM ||
             rc == CURLE_SSL_ISSUER_ERROR;
  std::string message = curl_easy_strerror(rc);
  if (tls) message += " (TLS verification failed; set SSL_CERT_FILE or CURL_CA_BUNDLE to your CA bundle)";
  if (rc == CURLE_OPERATION_TIMEDOUT) message += " (timed out)";
  return TransportError(message, !cancelled && !aborted && !tls, cancelled, aborted);
}

}  // namespace

struct Multi::Impl {
  CURLM* multi = nullptr;
  Id next_id = 1;
  std::unordered_map<Id, std::unique_ptr<Xfer>> running;
  std::vector<CURL*> idle;  // easy handles kept for reuse

  void release(Xfer& x) {
    curl_multi_remove_handle(multi, x.easy);
    curl_slist_free_all(x.headers);
    x.headers = nullptr;
    curl_easy_reset(x.easy);
    idle.push_back(x.easy);
  }

  void collect(std::vector<Result>& out) {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Xfer* x = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &x);
      if (!x) continue;
      Result r;
      r.id = x->id;
      long status = 0;
      curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
      x->response.status = status;
      if (msg->data.result != CURLE_OK) r.error = transport_error(msg->data.result, *x);
      r.response = std::move(x->response);
      release(*x);
      running.erase(r.id);
      out.push_back(std::move(r));
    }
  }
};

Multi::Multi() : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->multi = curl_multi_init();
  if (!impl_->multi) throw TransportError("cannot initialise libcurl", false, false, false);
  curl_multi_setopt(impl_->multi, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_NOTHING));
  curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS, 64L);
}

Multi::~Multi() {
  for (auto& [id, x] : impl_->running) {
    curl_multi_remove_handle(impl_->multi, x->easy);
    curl_slist_free_all(x->headers);
    curl_easy_cleanup(x->easy);
  }
  for (CURL* e : impl_->idle) curl_easy_cleanup(e);
  curl_multi_cleanup(impl_->multi);
}

Multi::Id Multi::start(const Request& request, StreamSink sink) {
  CURL* easy = nullptr;
  if (!impl_->idle.empty()) {
    easy = impl_->idle.back();
    impl_->idle.pop_back();
  } else {
    easy = curl_easy_init();
    if (!easy) throw TransportError("cannot initialise libcurl", false, false, false);
  }
  auto x = std::make_unique<Xfer>();
  x->id = impl_->next_id++;
  x->easy = easy;
  x->request = request;
  x->sink = std::move(sink);
  configure(*x);
  if (curl_multi_add_handle(impl_->multi, easy) != CURLM_OK) {
    curl_slist_free_all(x->headers);
    curl_easy_cleanup(easy);
    throw TransportError("cannot start a transfer", false, false, false);
  }
  Id id = x->id;
  impl_->running.emplace(id, std::move(x));
  return id;
}

void Multi::abort(Id id) {
  auto it = impl_->running.find(id);
  if (it == impl_->running.end()) return;
  // Removing a handle mid-transfer closes its connection (it cannot be reused).
  impl_->release(*it->second);
  impl_->running.erase(it);
}

void Multi::resume(Id id) {
  auto it = impl_->running.find(id);
  if (it != impl_->running.end()) curl_easy_pause(it->second->easy, CURLPAUSE_CONT);
}

std::vector<Multi::Result> Multi::poll(int timeout_ms) {
  std::vector<Result> out;
  int still = 0;
  curl_multi_perform(impl_->multi, &still);
  impl_->collect(out);
  if (!out.empty() || impl_->running.empty()) return out;
  curl_multi_poll(impl_->multi, nullptr, 0, timeout_ms, nullptr);
  curl_multi_perform(impl_->multi, &still);
  impl_->collect(out);
  return out;
}

std::size_t Multi::running() const { return impl_->running.size(); }

Client::Client() = default;
Client::~Client() = default;

Response Client::perform(const Request& request, const BodySink& sink) {
  StreamSink stream;
  if (sink)
    stream = [&sink](long status, const Headers& headers, const char* data, std::size_t n) {
      return sink(status, headers, data, n) ? Flow::proceed : Flow::abort;
    };
  const Multi::Id id = multi_.start(request, std::move(stream));
  for (;;) {
    for (auto& r : multi_.poll(200)) {
      if (r.id != id) continue;
      if (r.error) throw *r.error;
      return std::move(r.response);
    }
  }
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
