#include "support/test_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>

namespace hubcache::test {

namespace {

int connect_to(const std::string& host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  // Tests only ever proxy to loopback; anything else is refused.
  if (host != "127.0.0.1" && host != "localhost") {
    ::close(fd);
    return -1;
  }
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const char* p, std::size_t n) {
  while (n) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Copies bytes both ways until both directions are closed.
void relay(int a, int b) {
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  bool open[2] = {true, true};
  char buf[65536];
  while (open[0] || open[1]) {
    if (::poll(fds, 2, 30000) <= 0) return;
    for (int i = 0; i < 2; ++i) {
      if (!open[i] || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
      int other = fds[1 - i].fd;
      if (n <= 0) {
        open[i] = false;
        fds[i].fd = -1;
        ::shutdown(other, SHUT_WR);
        continue;
      }
      if (!send_all(other, buf, static_cast<std::size_t>(n))) return;
    }
  }
}

// "host:port" -> host, port.
bool split_host_port(const std::string& hp, std::string& host, int& port, int default_port) {
  auto colon = hp.rfind(':');
  host = colon == std::string::npos ? hp : hp.substr(0, colon);
  port = default_port;
  if (colon != std::string::npos) port = std::atoi(hp.c_str() + colon + 1);
  return !host.empty() && port > 0;
}

}  // namespace

TestProxy::TestProxy() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0)
    throw std::runtime_error("test proxy: cannot listen");
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestProxy::~TestProxy() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard lock(mutex_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : workers_) t.join();
}

std::string TestProxy::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> TestProxy::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void TestProxy::clear() {
  std::lock_guard lock(mutex_);
  requests_.clear();
}

void TestProxy::accept_loop() {
  while (!stopping_) {
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (stopping_) return;
      continue;
    }
    std::lock_guard lock(mutex_);
    open_fds_.push_back(client);
    workers_.emplace_back([this, client] { handle(client); });
  }
}

void TestProxy::handle(int client) {
  int upstream = -1;
  auto done = [&] {
    std::lock_guard lock(mutex_);
    // The fd numbers may be reused once closed: forget them first.
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), client), open_fds_.end());
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), upstream), open_fds_.end());
    if (upstream >= 0) ::close(upstream);
    ::close(client);
  };
  std::string head;
  char buf[8192];
  while (head.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(client, buf, sizeof buf, 0);
    if (n <= 0 || head.size() > (1u << 20)) return done();
    head.append(buf, static_cast<std::size_t>(n));
  }
  const auto end = head.find("\r\n\r\n") + 4;
  const std::string rest = head.substr(end);
  const std::string line = head.substr(0, head.find("\r\n"));
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(line);
  }
  const auto sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 <= sp1) return done();
  const std::string method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string host;
  int port = 0;
  if (method == "CONNECT") {
    if (!split_host_port(target, host, port, 443) || (upstream = connect_to(host, port)) < 0) {
      const char* bad = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      send_all(client, bad, std::strlen(bad));
      return done();
    }
    {
      std::lock_guard lock(mutex_);
      open_fds_.push_back(upstream);
    }
    const char* ok = "HTTP/1.1 200 Connection Established\r\n\r\n";
    if (send_all(client, ok, std::strlen(ok)) && send_all(upstream, rest.data(), rest.size())) relay(client, upstream);
    return done();
  }
  // Absolute form: METHOD http://host:port/path HTTP/1.1
  if (target.rfind("http://", 0) != 0) return done();
  const auto slash = target.find('/', 7);
  const std::string authority = target.substr(7, slash == std::string::npos ? std::string::npos : slash - 7);
  const std::string path = slash == std::string::npos ? "/" : target.substr(slash);
  if (!split_host_port(authority, host, port, 80) || (upstream = connect_to(host, port)) < 0) {
    const char* bad = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    send_all(client, bad, std::strlen(bad));
    return done();
  }
  {
    std::lock_guard lock(mutex_);
    open_fds_.push_back(upstream);
  }
  // One request per connection keeps the proxy simple: ask both sides to close.
  std::string out = method + " " + path + line.substr(sp2) + "\r\n";
  std::size_t pos = head.find("\r\n") + 2;
  while (pos < end - 2) {
    auto eol = head.find("\r\n", pos);
    std::string h = head.substr(pos, eol - pos);
    pos = eol + 2;
    std::string name = h.substr(0, h.find(':'));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (name == "connection" || name == "proxy-connection" || name == "keep-alive") continue;
    out += h + "\r\n";
  }
  out += "Connection: close\r\n\r\n" + rest;
  if (send_all(upstream, out.data(), out.size())) relay(client, upstream);
  done();
}

}  // namespace hubcache::test
