// A tiny HTTP proxy on an ephemeral 127.0.0.1 port for tests of HTTP(S)_PROXY and
// NO_PROXY: absolute-form requests (http://) are forwarded with Connection: close,
// CONNECT (https://) is tunnelled byte for byte. It records every request line.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hubcache::test {

class TestProxy {
 public:
  TestProxy();
  ~TestProxy();
  TestProxy(const TestProxy&) = delete;
  TestProxy& operator=(const TestProxy&) = delete;

  std::string url() const;  // http://127.0.0.1:PORT
  // Request lines as received: "HEAD http://127.0.0.1:1234/org/m/resolve/main/a.txt HTTP/1.1",
  // "CONNECT 127.0.0.1:5678 HTTP/1.1".
  std::vector<std::string> requests() const;
  void clear();

 private:
  void accept_loop();
  void handle(int client);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::vector<std::thread> workers_;
  std::vector<int> open_fds_;
};

}  // namespace hubcache::test
