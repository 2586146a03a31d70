// `hubcache serve` as a real child process, for tests that talk to the server a
// user runs (not an in-process stand-in).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace hubcache::test {

class ServeProcess {
 public:
  // Starts `hubcache serve --port 0 --cache-dir <cache> <extra...>` and waits for
  // the first stdout line (the base URL). Throws std::runtime_error when the
  // server exits or prints nothing within 20 s. stderr goes to a file (log()).
  ServeProcess(const std::filesystem::path& cache, const std::vector<std::string>& extra = {});
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  const std::string& url() const { return url_; }  // http://127.0.0.1:PORT
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Sends `sig` and waits (up to 20 s); returns the exit code, or -1 on a signal / timeout.
  int stop(int sig);
  // Everything the server wrote on stderr so far (the access log).
  std::string log() const;

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string url_;
  int port_ = 0;
  std::filesystem::path log_path_;
};

}  // namespace hubcache::test
