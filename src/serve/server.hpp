// hubcache serve: the Hub's HTTP API over a cache, so any Hub client (Python
// huggingface_hub, @huggingface/hub, hf-hub, hubcache) downloads from it with
// HF_ENDPOINT. LFS files redirect to a second listener, the "CDN", as on the Hub.
//
// Three rooms: engine.hpp (connections, HTTP, limits, drain), catalog.hpp (the cache
// as served: revisions, listings kept per commit), routes.hpp (the Hub's API). This
// class wires them together.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "mirror/mirror.hpp"
#include "serve/engine.hpp"

namespace hubcache::serve {

class Catalog;
struct RoutesOptions;

struct ServerOptions {
  std::filesystem::path cache_dir;  // an already resolved hub cache root
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0 picks a free port
  int cdn_port = 0;                  // 0 picks a free port
  std::optional<std::string> token;  // when set, hub requests need "Authorization: Bearer <token>"
  int threads = 0;                   // event-loop threads; 0: one per core
  int disk_threads = 4;              // the pool for blocking disk work (walks, hashing)
  Limits limits;                     // every limit on what clients send, and the timeouts
  bool access_log = true;            // one line per request on stderr (never a header)
  RequestHook on_request;            // also called for every finished request (metrics)
  Handler hub_miss, cdn_miss;        // see RoutesOptions: the seam for a pull-through mirror
  // serve --upstream: both listeners answer through the pull-through mirror
  // (serve/mirror_front.hpp), which falls back to the routes when the upstream cannot
  // help; GET /metrics is added. Its cache_dir and site_token are this server's.
  std::optional<mirror::MirrorOptions> mirror;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds both listeners and starts serving on background threads. Throws
  // Error(io) when a port cannot be bound.
  void start();
  // Graceful stop: refuses new connections, lets responses in flight finish for up to
  // `deadline`, then cuts the rest. Returns how many were cut. Callable from any thread.
  int drain(std::chrono::milliseconds deadline);
  // Cuts everything at once (also makes a drain() in progress return).
  void abort();
  // Joins the threads (aborting what is left). Idempotent.
  void stop();

  int port() const;
  int cdn_port() const;
  std::string base_url() const;  // http://host:port
  Engine& engine();
  Catalog& catalog();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcache::serve
