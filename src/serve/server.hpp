// hubcache serve: the Hub's HTTP API over a cache, so any Hub client (Python
// huggingface_hub, @huggingface/hub, hf-hub, hubcache) downloads from it with
// HF_ENDPOINT. LFS files redirect to a second listener, the "CDN", as on the Hub.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace hubcache::serve {

struct ServerOptions {
  std::filesystem::path cache_dir;  // an already resolved hub cache root
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0 picks a free port
  int cdn_port = 0;                 // 0 picks a free port
  std::optional<std::string> token; // when set, hub requests need "Authorization: Bearer <token>"
  int threads = 64;                 // worker threads kept per listener (more start on demand, up to 4096)
  bool access_log = true;           // one line per request on stderr (never a header)
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
  // Stops accepting, finishes in-flight requests, joins the threads. Idempotent.
  void stop();

  int port() const;
  int cdn_port() const;
  std::string base_url() const;  // http://host:port

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubcache::serve
