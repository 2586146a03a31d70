// A test fixture: the real CLI against the fault-injecting Hub + CDN (support/fault_server),
// with a cache of its own in a temp folder.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "layout/naming.hpp"
#include "support/fault_server.hpp"
#include "support/test_support.hpp"

namespace hubcache::test {

class CliAgainstFaultServer : public ::testing::Test {
 protected:
  FaultServer server;
  TempDir dir;

  // Short timeouts and retry waits, so fault tests take milliseconds.
  std::map<std::string, std::optional<std::string>> env() const {
    return {{"HF_ENDPOINT", server.url()},
            {"HF_HUB_CACHE", (dir / "cache").string()},
            {"HUBCACHE_RETRY_BASE_MS", "10"},
            {"HF_HUB_ETAG_TIMEOUT", "5"},
            {"HF_HUB_DOWNLOAD_TIMEOUT", "5"}};
  }
  std::map<std::string, std::optional<std::string>> env_with(
      const std::map<std::string, std::optional<std::string>>& extra) const {
    auto e = env();
    for (const auto& [k, v] : extra) e[k] = v;
    return e;
  }
  RunResult cli(const std::vector<std::string>& args,
                const std::map<std::string, std::optional<std::string>>& extra = {}) {
    return run_cli(args, env_with(extra));
  }
  // Starts the CLI without waiting for it (to kill -9 it); stdio goes to /dev/null.
  int start(const std::vector<std::string>& args) { return start_cli(args, env()); }

  fs::path repo_dir(const std::string& repo) const {
    return dir / "cache" / layout::repo_folder_name(repo, RepoType::model);
  }
  // Temp files, partials and sidecars left anywhere in the repo folder.
  std::vector<std::string> leftovers(const std::string& repo) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto& e : fs::recursive_directory_iterator(repo_dir(repo), ec)) {
      auto n = e.path().filename().string();
      if (n.find(".incomplete") != std::string::npos || n.find(".tmp") != std::string::npos ||
          n.find(".resume") != std::string::npos)
        out.push_back(n);
    }
    return out;
  }
};

}  // namespace hubcache::test
