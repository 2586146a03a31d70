// hubcache serve: share a cache with other machines through the Hub's HTTP API.
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/command.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "serve/server.hpp"
#include "util/fs.hpp"

namespace hubcache::cli {
namespace {

struct ServeArgs : RepoArgs {
  std::string host = "127.0.0.1";
  int port = 8080;
  int cdn_port = 0;
  std::string token_file;
  int threads = 0;
  int disk_threads = 4;
  double drain_seconds = 30;
  double header_timeout = 10;
  double idle_timeout = 60;
  bool quiet_log = false;
};

std::chrono::milliseconds seconds_flag(double s, const char* flag) {
  if (!(s >= 0) || s > 86400.0 * 365)
    throw Error(ErrorCode::invalid_argument, std::string(flag) + " must be a number of seconds from 0 up.");
  return std::chrono::milliseconds(static_cast<long long>(s * 1000));
}

int run(const ServeArgs& args) {
  // Block the stop signals before any thread starts; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Every connection is a file descriptor: lift the soft limit (often 1024) to the hard one.
  if (rlimit nofile{}; ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }

  serve::ServerOptions so;
  so.cache_dir = cache_root(to_options(args));
  so.host = args.host;
  so.port = args.port;
  so.cdn_port = args.cdn_port;
  if (args.threads < 0 || args.threads > 1024)
    throw Error(ErrorCode::invalid_argument, "--threads must be between 0 (one per core) and 1024.");
  if (args.disk_threads < 1 || args.disk_threads > 256)
    throw Error(ErrorCode::invalid_argument, "--disk-threads must be between 1 and 256.");
  so.threads = args.threads;
  so.disk_threads = args.disk_threads;
  so.limits.header_deadline = seconds_flag(args.header_timeout, "--header-timeout");
  so.limits.idle_timeout = seconds_flag(args.idle_timeout, "--idle-timeout");
  const auto drain = seconds_flag(args.drain_seconds, "--drain-seconds");
  so.access_log = !args.quiet_log;
  if (!args.token_file.empty()) {
    auto text = util::read_small_file(args.token_file);
    std::string token = text.value_or("");
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (token.empty())
      throw Error(ErrorCode::invalid_argument, "--token-file '" + args.token_file + "' is missing or empty.");
    so.token = token;
  }
  serve::Server server(so);
  server.start();
  std::cout << server.base_url() << std::endl;  // first line: the base URL, once accepting
  std::cerr << "serving " << so.cache_dir.string() << " (LFS files from port " << server.cdn_port()
            << "); set HF_ENDPOINT=" << server.base_url() << " on clients. Ctrl-C stops.\n";
  int sig = 0;
  sigwait(&signals, &sig);
  // The first signal drains: no new connections, the responses in flight finish (up
  // to --drain-seconds). A second one stops at once.
  std::cerr << "stopping: finishing the requests in flight (up to " << args.drain_seconds
            << " s; Ctrl-C again stops at once)\n";
  std::atomic<bool> drained{false};
  int cut = 0;
  std::thread drainer([&] {
    cut = server.drain(drain);
    drained = true;
  });
  bool forced = false;
  while (!drained) {
    timespec tick{0, 50'000'000};
    if (sigtimedwait(&signals, nullptr, &tick) > 0) {
      forced = true;
      server.abort();
      break;
    }
  }
  drainer.join();
  server.stop();
  if (forced) {
    std::cerr << "stopped at once: requests in flight were cut\n";
    return static_cast<int>(ErrorCode::cancelled);
  }
  if (cut > 0) std::cerr << cut << " request(s) still in flight after " << args.drain_seconds << " s were cut\n";
  return 0;
}

Registrar reg{
    {"serve", "Serve the cache with the Hub's HTTP API (for HF_ENDPOINT on other machines)", 70,
     [](CLI::App& sub) -> std::function<int()> {
       auto args = std::make_shared<ServeArgs>();
       add_cache_dir_flag(sub, *args);
       sub.add_option("--host", args->host, "Address to listen on")->default_val("127.0.0.1");
       sub.add_option("--port", args->port, "Port (0 picks a free one)")->default_val(8080);
       sub.add_option("--cdn-port", args->cdn_port, "Port for LFS downloads (0 picks a free one)")->default_val(0);
       sub.add_option("--token-file", args->token_file,
                      "Require 'Authorization: Bearer <token>' with the token in this file");
       sub.add_option("--threads", args->threads, "Event-loop threads (0: one per core)")->default_val(0);
       sub.add_option("--disk-threads", args->disk_threads, "Threads for blocking disk work (folder walks, hashing)")
           ->default_val(4);
       sub.add_option("--drain-seconds", args->drain_seconds,
                      "On SIGTERM/SIGINT, how long requests in flight may take to finish")
           ->default_val(30);
       sub.add_option("--header-timeout", args->header_timeout, "Seconds a client has to send a whole request header")
           ->default_val(10);
       sub.add_option("--idle-timeout", args->idle_timeout, "Seconds an idle kept-alive connection stays open")
           ->default_val(60);
       sub.add_flag("--no-access-log", args->quiet_log, "Do not log requests on stderr");
       return [args] { return run(*args); };
     }}};

}  // namespace
}  // namespace hubcache::cli
