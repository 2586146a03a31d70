// hubcache serve --upstream: a pull-through mirror of the Hub (or of another
// mirror) into a normal hub cache. docs/architecture.md ("The mirror") has the design.
//
// The server (src/serve) hands every Hub-API request to Mirror::handle, which answers
// it, possibly later and from another thread, with a Reply: bytes in memory, a file
// of the cache, a file still growing (an Attempt of a fill, see fill.hpp), or "answer
// from the cache as plain serve does" when the upstream cannot be asked. The server
// applies Range requests to file and growing bodies, and owns the connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mirror/fill.hpp"
#include "mirror/metrics.hpp"

namespace hubcache::mirror {

struct MirrorOptions {
  std::filesystem::path cache_dir;              // the hub cache root (resolved)
  std::string upstream;                         // "https://huggingface.co", or another mirror
  std::optional<std::string> upstream_token;    // --upstream-token-file: the mirror's own token
  bool share_upstream_token = false;            // clients without access may use it
  std::optional<std::string> site_token;        // serve's --token-file
  std::vector<std::string> allow, deny;         // fnmatch patterns on repo ids
  std::chrono::seconds revalidate{60};          // branch re-resolution and .no_exist interval
  std::chrono::seconds access_ttl{60};          // how long a token's access answer is kept
  std::optional<std::uint64_t> max_size;        // --max-size: gc past this many bytes
  int connections = 8;                          // upstream connections per file
  std::size_t threads = 16;                     // threads for upstream requests
  std::size_t listing_cache_bytes = 64u << 20;  // upstream listings kept in memory
  bool log = true;                              // one stderr line per upstream failure
};

// A request, as the server received it.
struct Request {
  std::string method;                        // GET, HEAD, POST
  std::string target;                        // raw request target (path and query, undecoded)
  bool cdn = false;                          // arrived on the CDN listener
  std::optional<std::string> authorization;  // the Authorization header
  std::string host;                          // the Host header (absolute URLs are built from it)
  std::string if_none_match;
  std::string body;  // POST body (paths-info)
  std::string content_type;
};

// A cache file to send (the server applies Range). Holds the file open, and marked as
// in use for --max-size, until the reply is destroyed.
struct FileBody {
  int fd = -1;
  std::uint64_t size = 0;
  std::shared_ptr<void> keep;  // closes fd and releases the in-use mark
};

struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type;
  std::string body;                          // in-memory body (JSON, messages)
  std::optional<FileBody> file;              // a cached file
  std::shared_ptr<Attempt> growing;          // a file still arriving (Attempt::listen from the range's start)
  std::optional<std::uint64_t> head_length;  // HEAD of a file not cached: its Content-Length, no body
  bool from_cache_server = false;            // answer with the cache as plain `hubcache serve` does
  std::string route;                         // metrics label: resolve, cdn, info, tree, paths-info, refs, other

  std::optional<std::string> header(const std::string& name) const;
};

class Mirror {
 public:
  // Throws Error(invalid_argument) for an unusable upstream URL.
  explicit Mirror(MirrorOptions options);
  ~Mirror();
  Mirror(const Mirror&) = delete;
  Mirror& operator=(const Mirror&) = delete;

  // The port LFS redirects point to (the server's CDN listener), once it listens.
  void set_cdn_port(int port);

  // Answers `request`: calls `done` exactly once, maybe before returning, maybe later
  // from another thread. Never throws.
  void handle(const Request& request, std::function<void(Reply)> done);

  // One finished request, for /metrics (the server's per-request hook).
  void record(const std::string& route, int status, std::uint64_t bytes, double seconds);
  // GET /metrics.
  std::string render_metrics() const;
  Metrics& metrics();

  // Stops fills (their partials stay for the next run) and the threads.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcache::mirror
