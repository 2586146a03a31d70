// The test suite's fault server (tests/support/fault_server) as a program, for
// benchmarks and scripts that need an upstream Hub on 127.0.0.1: one repo, generated
// files, a CDN capped in total bandwidth.
//
//   fault_hub [--repo org/name] [--file PATH:BYTES[:lfs]]... [--cdn-bps N] [--seed N]
//
// Prints "<hub url> <cdn url>" as its first stdout line once it listens, then serves
// until SIGINT or SIGTERM. GET /_fault/stats on the hub answers JSON counters
// (cdn_bytes: LFS bytes the CDN sent); GET /_fault/reset clears them.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "support/fault_server.hpp"

int main(int argc, char** argv) {
  std::string repo = "org/model";
  struct Spec {
    std::string path;
    std::size_t bytes;
    bool lfs;
  };
  std::vector<Spec> files;
  long long cdn_bps = 0;
  unsigned seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "fault_hub: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--repo") {
      repo = value();
    } else if (a == "--file") {
      std::string v = value();
      auto c1 = v.find(':');
      if (c1 == std::string::npos) {
        std::cerr << "fault_hub: --file PATH:BYTES[:lfs]\n";
        return 2;
      }
      auto c2 = v.find(':', c1 + 1);
      files.push_back({v.substr(0, c1),
                       std::stoull(v.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1)),
                       c2 != std::string::npos && v.substr(c2 + 1) == "lfs"});
    } else if (a == "--cdn-bps") {
      cdn_bps = std::stoll(value());
    } else if (a == "--seed") {
      seed = static_cast<unsigned>(std::stoul(value()));
    } else {
      std::cerr << "usage: fault_hub [--repo org/name] [--file PATH:BYTES[:lfs]]... [--cdn-bps N] [--seed N]\n";
      return 2;
    }
  }
  if (files.empty()) files.push_back({"config.json", 64, false});

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  hubcache::test::FaultServer server;
  unsigned n = seed;
  for (const auto& f : files) server.add_file(repo, f.path, hubcache::test::test_bytes(f.bytes, n++), f.lfs);
  hubcache::test::FaultServer::Faults faults;
  faults.cdn_total_bps = cdn_bps;
  server.set_faults(faults);
  std::cout << server.url() << " " << server.cdn_url() << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  return 0;
}
