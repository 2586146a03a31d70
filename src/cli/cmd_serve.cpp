// hubcache serve: share a cache with other machines through the Hub's HTTP API.
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <iostream>

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
  int threads = 64;
  bool quiet_log = false;
};

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
  so.threads = args.threads;
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
  std::cerr << "stopping\n";
  server.stop();
  return 0;
}

Registrar reg{{"serve", "Serve the cache with the Hub's HTTP API (for HF_ENDPOINT on other machines)", 70,
               [](CLI::App& sub) -> std::function<int()> {
                 auto args = std::make_shared<ServeArgs>();
                 add_cache_dir_flag(sub, *args);
                 sub.add_option("--host", args->host, "Address to listen on")->default_val("127.0.0.1");
                 sub.add_option("--port", args->port, "Port (0 picks a free one)")->default_val(8080);
                 sub.add_option("--cdn-port", args->cdn_port, "Port for LFS downloads (0 picks a free one)")
                     ->default_val(0);
                 sub.add_option("--token-file", args->token_file,
                                "Require 'Authorization: Bearer <token>' with the token in this file");
                 sub.add_option("--threads", args->threads, "Worker threads per listener")->default_val(64);
                 sub.add_flag("--no-access-log", args->quiet_log, "Do not log requests on stderr");
                 return [args] { return run(*args); };
               }}};

}  // namespace
}  // namespace hubcache::cli
