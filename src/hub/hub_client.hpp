// The Hub protocol on top of http::Client: metadata of one file (HEAD resolve),
// who may receive the token, retries, and the mapping of Hub errors to
// hubcache::Error codes with messages a user can act on.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "http/client.hpp"
#include "hubcache/error.hpp"
#include "hubcache/options.hpp"

namespace hubcache::hub {

// Who is asked, for what. The token is only ever sent to the endpoint's origin.
struct Context {
  std::string endpoint;
  std::optional<std::string> token;
  RepoType type = RepoType::model;
  std::string repo_id;
  std::string revision;
  std::string file;  // empty for repo-level requests
  const std::atomic<bool>* cancel = nullptr;
  double etag_timeout = 10;
  double download_timeout = 10;
};

// Context from Options + Settings (endpoint, token, timeouts).
Context make_context(std::string_view repo_id, std::string_view file, const Options& options);

// What HEAD /resolve/ tells about a file (reference §3.3).
struct FileMetadata {
  std::string commit;    // X-Repo-Commit
  std::string etag;      // X-Linked-Etag or ETag, normalised
  std::uint64_t size;    // X-Linked-Size, or Content-Length of a non-redirect
  std::string location;  // where to GET the bytes (CDN URL, or the resolve URL)
};

// A 404 EntryNotFound, with the commit the Hub resolved (for .no_exist).
class EntryNotFoundError : public Error {
 public:
  EntryNotFoundError(const std::string& message, std::string commit)
      : Error(ErrorCode::entry_not_found, message), commit_(std::move(commit)) {}
  const std::string& commit() const { return commit_; }

 private:
  std::string commit_;
};

// The Hub could not be reached at all (connection, DNS, TLS, timeout), after the
// retries asked for: no answer came. The caller that knows what the cache lacks
// turns it into advice (transfer::unreachable_message).
class UnreachableError : public Error {
 public:
  UnreachableError(const std::string& message, std::string endpoint, std::string cause, bool transient)
      : Error(ErrorCode::network, message),
        endpoint_(std::move(endpoint)),
        cause_(std::move(cause)),
        transient_(transient) {}
  const std::string& endpoint() const { return endpoint_; }
  const std::string& cause() const { return cause_; }  // libcurl's words, e.g. "Couldn't connect to server"
  // A connection, DNS or timeout failure (the network is down or the Hub out of reach),
  // not a TLS failure, which no retry or cached copy makes right.
  bool transient() const { return transient_; }

 private:
  std::string endpoint_, cause_;
  bool transient_;
};

// Headers every request carries; Authorization only when `url` is on the
// endpoint's origin (scheme, host and port all equal) and `allow_auth` holds.
// Along a redirect chain, pass allow_auth = false once any hop left the
// endpoint's origin: like Python (requests, httpx), a token dropped on a
// cross-origin hop is never re-added, even when a later hop comes back.
std::vector<std::pair<std::string, std::string>> request_headers(const Context& ctx, std::string_view url,
                                                                 bool allow_auth = true);
// True when `url` is on the endpoint's origin.
bool on_endpoint(const Context& ctx, std::string_view url);

// Throws the Error a non-2xx/3xx response means (EntryNotFoundError for entries).
[[noreturn]] void throw_error_from_response(const http::Response& response, const Context& ctx);

// Is a status worth retrying (408, 429, 5xx)?
bool retryable_status(long status);
// How long to wait before retry `attempt` (0-based): the response's Retry-After
// (delta-seconds or an HTTP-date, at most 60 s) or RateLimit reset (t=, at most
// 61 s) when given, else exponential backoff from Settings::retry_base_ms.
std::chrono::milliseconds retry_delay(int attempt, const http::Response* response);
// Sleeps retry_delay(attempt, response). Throws Error(cancelled).
void backoff(int attempt, const http::Response* response, const std::atomic<bool>* cancel);

// Commit, etag and size from the headers of a metadata HEAD answer (`redirect`: it was a 3xx,
// whose Content-Length is not the file's). Checks what the cache relies on: a 40-hex
// X-Repo-Commit, an etag usable as a file name in blobs/ (no '/', '\\', leading '.' or control
// characters; at most 200 bytes), a size of decimal digits only. `location` is left empty.
// Throws Error(http) for a missing or malformed header, Error(integrity) for an unusable ETag.
FileMetadata parse_file_metadata(const http::Headers& headers, bool redirect, const Context& ctx);

// HEAD /{prefix}{repo}/resolve/{rev}/{file}: follows relative redirects only,
// retries transport errors, 408/429/5xx up to `max_retries` times (0 = single try).
// Throws Error (EntryNotFoundError for a missing file; network after retries).
FileMetadata get_file_metadata(http::Client& client, const Context& ctx, int max_retries);

// GET an API URL (JSON). Follows relative redirects; retries like above.
http::Response get_json(http::Client& client, const Context& ctx, const std::string& url, int max_retries);

}  // namespace hubcache::hub
