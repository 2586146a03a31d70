// The hubcache command line: a registry of subcommands, one file per command.
//
// A command file defines a static Registrar; main() builds the CLI11 app from
// the registry, so adding a command never touches main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "hubcache/options.hpp"

namespace hubcache::cli {

// Configures the subcommand's flags and returns what runs it (its exit status).
using CommandSetup = std::function<std::function<int()>(CLI::App& sub)>;

struct Command {
  std::string name;
  std::string description;
  int order;  // position in --help
  CommandSetup setup;
  std::vector<std::string> aliases = {};
};

std::vector<Command>& registry();

struct Registrar {
  explicit Registrar(Command command) { registry().push_back(std::move(command)); }
};

// Flags shared by the commands that address one repo in the cache.
struct RepoArgs {
  std::string repo;
  std::string revision = "main";
  std::string repo_type = "model";
  std::string cache_dir;
  std::string layout = "hub";
  bool offline = false;
};
void add_repo_type_flag(CLI::App& sub, RepoArgs& args);
void add_revision_flag(CLI::App& sub, RepoArgs& args);
void add_cache_dir_flag(CLI::App& sub, RepoArgs& args);
void add_layout_flag(CLI::App& sub, RepoArgs& args);
// Options from the shared flags (throws Error(invalid_argument) on a bad type).
Options to_options(const RepoArgs& args);

// Output mode shared by commands that print a result.
enum class Format { human, json, quiet };
void add_format_flags(CLI::App& sub, Format& format);

// Prints "error: <message>" on stderr (never a token) and returns the exit code.
int report_error(const std::exception& e);

}  // namespace hubcache::cli
