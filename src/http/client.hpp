// The one place that knows libcurl: HTTP exchanges with no automatic redirects
// (callers decide which hops to follow and which headers to keep), one at a time
// (Client) or several at once on one thread (Multi).
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
  std::string body;             // POST body
  double connect_timeout = 10;  // seconds
  double read_timeout = 10;     // seconds without a byte before the transfer is abandoned (0 = never)
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

// What a streaming sink of Multi wants next. `pause` takes none of the bytes
// offered: the same bytes are offered again after Multi::resume.
enum class Flow { proceed, pause, abort };
using StreamSink = std::function<Flow(long status, const Headers& headers, const char* data, std::size_t size)>;

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

// Concurrent transfers driven from one thread (libcurl's multi interface). Its
// connection cache outlives transfers, so connections are kept alive and reused
// by later transfers to the same origin. Ranges of one file are never multiplexed
// onto one HTTP/2 connection: each concurrent transfer gets its own TCP
// connection, since per-connection caps and TCP windows are why several
// connections are faster (HTTP/2 is still negotiated over TLS when offered).
// Not thread-safe: one Multi per thread.
class Multi {
 public:
  using Id = std::uint64_t;
  struct Result {
    Id id = 0;
    Response response;                    // status, headers, the body of a non-2xx answer (bounded)
    std::optional<TransportError> error;  // set when the transfer did not complete
  };

  Multi();
  ~Multi();
  Multi(const Multi&) = delete;
  Multi& operator=(const Multi&) = delete;

  // Starts a transfer. `sink` receives 2xx body bytes from inside poll(); it must
  // not call back into this Multi. A read_timeout of 0 disables libcurl's own
  // stall detection (the caller watches progress itself).
  Id start(const Request& request, StreamSink sink);
  // Ends a running transfer now (its connection is closed); it yields no Result.
  void abort(Id id);
  // Continues a transfer whose sink answered Flow::pause (its socket is not read
  // meanwhile). The sink may be called from inside this call.
  void resume(Id id);
  // Moves data for up to `timeout_ms` (returns sooner when a transfer ends) and
  // returns the transfers that ended.
  std::vector<Result> poll(int timeout_ms);
  std::size_t running() const;

  struct Impl;  // libcurl state, reached from its C callbacks

 private:
  std::unique_ptr<Impl> impl_;
};

// One exchange at a time over a Multi (its connection cache): keep one per thread.
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

  // The connections this client keeps, for concurrent transfers on the same thread.
  Multi& multi() { return multi_; }

 private:
  Multi multi_;
};

// "scheme://host:port" of a URL, with default ports made explicit, lowercase host.
std::string origin_of(std::string_view url);
// Resolves a Location header against the URL it came from.
std::string resolve_location(std::string_view base_url, std::string_view location);
// True when `location` has no scheme and host (a relative redirect).
bool is_relative_location(std::string_view location);

}  // namespace hubcache::http
