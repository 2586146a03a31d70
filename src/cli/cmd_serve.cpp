// hubcache serve: share a cache with other machines through the Hub's HTTP API.
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "cli/command.hpp"
#include "hubcache/admin.hpp"
#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "serve/server.hpp"
#include "util/fs.hpp"

namespace hubcache::cli {
namespace {

std::chrono::milliseconds seconds_flag(double s, const char* flag) {
  if (!(s >= 0) || s > 86400.0 * 365)
    throw Error(ErrorCode::invalid_argument, std::string(flag) + " must be a number of seconds from 0 up.");
  return std::chrono::milliseconds(static_cast<long long>(s * 1000));
}

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
  // serve --upstream
  std::string upstream;
  std::string upstream_token_file;
  bool share_upstream_token = false;
  std::vector<std::string> allow, deny;
  double revalidate = 60;
  std::string max_size;
  int upstream_connections = 8;
  // Set by the parser: whether the mirror flags that have a default were given.
  const CLI::Option* revalidate_flag = nullptr;
  const CLI::Option* upstream_connections_flag = nullptr;
};

std::string read_token_file(const std::string& path, const char* flag) {
  auto text = util::read_small_file(path);
  std::string token = text.value_or("");
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty())
    throw Error(ErrorCode::invalid_argument, std::string(flag) + " '" + path + "' is missing or empty.");
  return token;
}

// The mirror's options from the flags, or nullopt without --upstream (which the other
// mirror flags then need).
std::optional<mirror::MirrorOptions> mirror_options(const ServeArgs& args) {
  if (args.upstream.empty()) {
    const auto given = [](const CLI::Option* o) { return o && o->count() > 0; };
    if (!args.upstream_token_file.empty() || args.share_upstream_token || !args.allow.empty() || !args.deny.empty() ||
        !args.max_size.empty() || given(args.revalidate_flag) || given(args.upstream_connections_flag))
      throw Error(ErrorCode::invalid_argument,
                  "--upstream-token-file, --share-upstream-token, --allow, --deny, --max-size, --revalidate and "
                  "--upstream-connections are for a mirror: add --upstream URL (e.g. --upstream https://huggingface.co).");
    return std::nullopt;
  }
  mirror::MirrorOptions m;
  m.upstream = args.upstream;
  while (!m.upstream.empty() && m.upstream.back() == '/') m.upstream.pop_back();
  if (m.upstream.rfind("http://", 0) != 0 && m.upstream.rfind("https://", 0) != 0)
    throw Error(ErrorCode::invalid_argument,
                "--upstream '" + args.upstream + "' is not an http:// or https:// URL (e.g. https://huggingface.co).");
  if (!args.upstream_token_file.empty())
    m.upstream_token = read_token_file(args.upstream_token_file, "--upstream-token-file");
  if (args.share_upstream_token && !m.upstream_token)
    throw Error(ErrorCode::invalid_argument,
                "--share-upstream-token needs the token to share: --upstream-token-file F.");
  m.share_upstream_token = args.share_upstream_token;
  m.allow = args.allow;
  m.deny = args.deny;
  m.revalidate = std::chrono::duration_cast<std::chrono::seconds>(seconds_flag(args.revalidate, "--revalidate"));
  if (!args.max_size.empty()) {
    m.max_size = admin::parse_size(args.max_size);
    if (*m.max_size == 0)
      throw Error(ErrorCode::invalid_argument,
                  "--max-size 0 would evict every file as soon as it is fetched: give the size the cache may "
                  "grow to (e.g. --max-size 500G), or leave it out for no limit.");
  }
  if (args.upstream_connections < 1 || args.upstream_connections > 64)
    throw Error(ErrorCode::invalid_argument, "--upstream-connections must be between 1 and 64.");
  m.connections = args.upstream_connections;
  return m;
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
  if (!args.token_file.empty()) so.token = read_token_file(args.token_file, "--token-file");
  so.mirror = mirror_options(args);
  if (so.mirror) util::make_dirs(so.cache_dir);  // a mirror may start from nothing
  serve::Server server(so);
  server.start();
  std::cout << server.base_url() << std::endl;  // first line: the base URL, once accepting
  std::cerr << "serving " << so.cache_dir.string();
  if (so.mirror) std::cerr << ", a mirror of " << so.mirror->upstream;
  std::cerr << " (LFS files from port " << server.cdn_port() << "); set HF_ENDPOINT=" << server.base_url()
            << " on clients. Ctrl-C stops.\n";
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
       sub.add_option("--upstream", args->upstream,
                      "Be a pull-through mirror of this Hub (https://huggingface.co) or of another mirror");
       sub.add_option("--upstream-token-file", args->upstream_token_file,
                      "The mirror's own Hub token (for fetching gated and private repos)");
       sub.add_flag("--share-upstream-token", args->share_upstream_token,
                    "Let clients without access to a gated or private repo use the mirror's token");
       sub.add_option("--allow", args->allow, "Mirror only repos matching this fnmatch pattern (repeatable)");
       sub.add_option("--deny", args->deny, "Never mirror repos matching this fnmatch pattern (repeatable)");
       args->revalidate_flag = sub.add_option("--revalidate", args->revalidate,
                      "Seconds between re-resolutions of a branch or tag upstream (and of a missing file)")
           ->default_val(60);
       sub.add_option("--max-size", args->max_size,
                      "Evict least recently used revisions when the cache grows past this size (500G)");
       args->upstream_connections_flag = sub.add_option("--upstream-connections", args->upstream_connections,
                      "Connections per file fetched upstream (1 to 64)")
           ->default_val(8);
       return [args] { return run(*args); };
     }}};

}  // namespace
}  // namespace hubcache::cli
