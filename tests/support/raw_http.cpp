#include "support/raw_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hubcache::test {

namespace {
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
long status_field(int pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  return -1;
}
}  // namespace

std::string RawResponse::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == lower(name)) return v;
  return "";
}
std::size_t RawResponse::count(const std::string& name) const {
  std::size_t n = 0;
  for (const auto& [k, v] : headers) n += k == lower(name);
  return n;
}

RawConnection::RawConnection(int port, int rcvbuf) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConnection::~RawConnection() { close(); }

void RawConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConnection::send(const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

void RawConnection::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

bool RawConnection::fill(std::chrono::steady_clock::time_point deadline) {
  if (eof_ || fd_ < 0) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buffer_.append(buf, static_cast<std::size_t>(n));
  return true;
}

RawResponse RawConnection::read_response(std::chrono::milliseconds timeout, bool head_only) {
  RawResponse r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
    if (!fill(deadline)) return r;
  std::istringstream lines(buffer_.substr(0, end));
  std::string line;
  std::getline(lines, line);
  if (line.size() < 12) return r;
  r.status = std::atoi(line.substr(9, 3).c_str());
  std::size_t length = 0;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    r.headers.emplace_back(lower(line.substr(0, colon)), value);
  }
  if (!head_only) {
    auto cl = r.header("content-length");
    length = cl.empty() ? 0 : std::stoull(cl);
  }
  buffer_.erase(0, end + 4);
  while (buffer_.size() < length)
    if (!fill(deadline)) {
      r.body = std::move(buffer_);
      buffer_.clear();
      return r;
    }
  r.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  r.ok = true;
  return r;
}

bool RawConnection::received(std::chrono::milliseconds timeout) {
  if (buffer_.empty()) fill(std::chrono::steady_clock::now() + timeout);
  return !buffer_.empty();
}

bool RawConnection::closed_by_peer(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (eof_) return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string http_get(const std::string& target, const std::vector<std::string>& extra, const std::string& method) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : extra) req += h + "\r\n";
  return req + "\r\n";
}

long raise_nofile_limit() {
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &nofile);
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  return static_cast<long>(nofile.rlim_cur);
}

int process_threads(int pid) {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

long process_cpu_ticks(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces) in parentheses: utime is the 14th.
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) {
      stime = std::stol(field);
      break;
    }
  }
  return utime + stime;
}

long process_rss_kib(int pid) { return status_field(pid, "VmRSS"); }
long process_peak_rss_kib(int pid) { return status_field(pid, "VmHWM"); }

}  // namespace hubcache::test
