// A bare HTTP/1.1 client over one TCP connection to 127.0.0.1, for tests that need
// what client libraries hide: pipelining, half-close, trickled or endless headers,
// resets, and the exact bytes of each response.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace hubcache::test {

struct RawResponse {
  bool ok = false;  // a whole response (header and Content-Length body) was read
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, in order
  std::string body;
  std::string header(const std::string& name) const;  // first value, or ""
  std::size_t count(const std::string& name) const;
};

class RawConnection {
 public:
  // Connects to 127.0.0.1:port; fd() < 0 when refused.
  explicit RawConnection(int port, int rcvbuf = 0);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  int fd() const { return fd_; }
  bool connected() const { return fd_ >= 0; }
  // Sends everything (false when the server closed or reset the connection).
  bool send(const std::string& data);
  void shutdown_write();
  // Reads one response; `head_only` for a HEAD (no body follows its Content-Length).
  RawResponse read_response(std::chrono::milliseconds timeout = std::chrono::seconds(10), bool head_only = false);
  // Waits until some bytes of a response arrived (kept for read_response).
  bool received(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for the server to close: true on EOF or reset within the timeout.
  bool closed_by_peer(std::chrono::milliseconds timeout);
  // Bytes received but not yet consumed by read_response.
  std::string& pending() { return buffer_; }
  void close();

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

// "GET <target> HTTP/1.1" with Host and the extra header lines.
std::string http_get(const std::string& target, const std::vector<std::string>& extra = {},
                     const std::string& method = "GET");

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
long raise_nofile_limit();
// /proc/<pid>: threads, CPU ticks (user + system), resident and peak memory (KiB).
int process_threads(int pid);
long process_cpu_ticks(int pid);
long process_rss_kib(int pid);
long process_peak_rss_kib(int pid);

}  // namespace hubcache::test
