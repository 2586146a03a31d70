// The one place that knows libcurl: single HTTP exchanges with no automatic
// redirects (callers decide which hops to follow and which headers to keep).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hubcache::http {

// Response headers of the final response (case-insensitive lookup).
class Headers {
 public:
  void add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }
  void clear() { items_.clear(); }
  std::optional<std::string> get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

struct Request {
  std::string method = "GET";  // GET, HEAD or POST
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                     // POST body
  double connect_timeout = 10;          // seconds
  double read_timeout = 10;             // seconds without a byte before the transfer is abandoned
  std::uint64_t max_bytes_per_second = 0;
  const std::atomic<bool>* cancel = nullptr;
};

struct Response {
  long status = 0;
  Headers headers;
  std::string body;  // error bodies and small API bodies (not streamed ones)
};

// Receives body bytes of a 2xx response. Return false to abort the transfer.
using BodySink = std::function<bool(long status, const Headers& headers, const char* data, std::size_t size)>;

// A transport failure: DNS, connect, TLS, timeout, reset, aborted by the sink or
// the cancel flag. `retryable` is false for TLS verification and cancellations.
class TransportError : public std::runtime_error {
 public:
  TransportError(const std::string& message, bool retryable, bool cancelled, bool aborted_by_sink)
      : std::runtime_error(message), retryable_(retryable), cancelled_(cancelled), aborted_(aborted_by_sink) {}
  bool retryable() const { return retryable_; }
  bool cancelled() const { return cancelled_; }
  bool aborted_by_sink() const { return aborted_; }

 private:
  bool retryable_, cancelled_, aborted_;
};

// One reusable connection cache (a curl easy handle): keep one per thread.
class Client {
 public:
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Performs one exchange. With a sink, a 2xx body is streamed to it; other
  // bodies (and every body without a sink) are kept in Response::body (bounded).
  // Throws TransportError.
  Response perform(const Request& request, const BodySink& sink = nullptr);

  struct Impl;  // libcurl state, reached from its C callbacks

 private:
  std::unique_ptr<Impl> impl_;
};

// "scheme://host:port" of a URL, with default ports made explicit, lowercase host.
std::string origin_of(std::string_view url);
// Resolves a Location header against the URL it came from.
std::string resolve_location(std::string_view base_url, std::string_view location);
// True when `location` has no scheme and host (a relative redirect).
bool is_relative_location(std::string_view location);

}  // namespace hubcache::http
