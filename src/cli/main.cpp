#include <algorithm>
#include <iostream>

#include "cli/command.hpp"
#include "hubcache/error.hpp"

namespace hubcache::cli {

std::vector<Command>& registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace hubcache::cli

int main(int argc, char** argv) {
  using namespace hubcache::cli;
  CLI::App app{"hubcache: a Hugging Face Hub file cache that works offline, shared with huggingface_hub.",
               "hubcache"};
  app.set_version_flag("--version", std::string("hubcache ") + HUBCACHE_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);

  auto& commands = registry();
  std::sort(commands.begin(), commands.end(), [](const Command& a, const Command& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (auto& cmd : commands) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.description);
    for (auto& alias : cmd.aliases) sub->alias(alias);
    runners.emplace_back(sub, cmd.setup(*sub));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // The same "error: ..." line as every other failure, then where the flags are listed.
    std::string where = "hubcache";
    for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
    std::cerr << "error: " << e.what() << "\nRun '" << where << " --help' for the flags.\n";
    return hubcache::exit_code(hubcache::ErrorCode::invalid_argument);
  }

  for (auto& [sub, run] : runners) {
    if (!sub->parsed()) continue;
    try {
      return run();
    } catch (const std::exception& e) {
      return report_error(e);
    }
  }
  return 0;
}
