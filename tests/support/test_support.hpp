// Helpers shared by the unit and end-to-end tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hubcache/options.hpp"

namespace hubcache::test {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& sub) const { return path_ / sub; }

 private:
  fs::path path_;
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs a program with a clean environment: the parent's variables minus every
// HF_* / HUGGING* / XDG_CACHE_HOME / proxy variable, plus `env` (a value of
// std::nullopt removes the variable). HOME is set to `home` when given.
RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::optional<std::string>>& env = {},
              std::chrono::seconds timeout = std::chrono::seconds(120), const std::string& stdin_data = "");
// The hubcache CLI built with these tests.
RunResult run_cli(const std::vector<std::string>& args,
                  const std::map<std::string, std::optional<std::string>>& env = {},
                  std::chrono::seconds timeout = std::chrono::seconds(120));
// The CLI the tests run: what use_cli() named, else $HUBCACHE_TEST_CLI when set (the
// suite against a copy placed elsewhere), else the one built with the tests.
std::string cli_path();
// Makes cli_path() return `cli` from now on, in this process (say, a forked child).
void use_cli(const fs::path& cli);
// The environment run() gives a child: the parent's minus the scrubbed variables, plus `env`.
std::vector<std::string> child_environment(const std::map<std::string, std::optional<std::string>>& env);
// Starts the CLI without waiting (stdin /dev/null, stdout and stderr appended to
// `output`); the caller kills and reaps it (kill, waitpid).
pid_t spawn_cli(const std::vector<std::string>& args, const std::map<std::string, std::optional<std::string>>& env,
                const fs::path& output = "/dev/null");

// Starts any program (argv[0] an absolute path) without waiting, same environment rules
// as run(); stdin /dev/null, stdout and stderr appended to `output`. The caller kills and reaps it.
pid_t spawn_process(const std::vector<std::string>& argv, const std::map<std::string, std::optional<std::string>>& env,
                    const fs::path& output = "/dev/null");

// Starts the CLI in the background (same environment rules as run(); stdin, stdout
// and stderr on /dev/null) and returns its pid: for tests that kill -9 it or race it.
int start_cli(const std::vector<std::string>& args, const std::map<std::string, std::optional<std::string>>& env = {});
// Waits for a process started by start_cli; its exit code, -1 if killed by a signal.
int wait_cli(int pid);

// Runs the CLI on a pseudo-terminal (stdin and stderr, and stdout unless
// `stdout_on_terminal` is false, when it goes to a pipe), as a person at a
// terminal would; `typed` is typed into the terminal. Same environment rules as run().
struct TerminalResult {
  int exit_code = -1;        // -1 when killed by a signal or timed out
  std::string terminal;      // everything written to the terminal (echoed input included)
  std::string piped_stdout;  // stdout when it is not the terminal
  bool timed_out = false;
};
TerminalResult run_cli_in_terminal(const std::vector<std::string>& args,
                                   const std::map<std::string, std::optional<std::string>>& env = {},
                                   bool stdout_on_terminal = true, const std::string& typed = "",
                                   std::chrono::seconds timeout = std::chrono::seconds(120));

// The last non-empty line of a text.
std::string last_line(const std::string& text);
std::string read_file(const fs::path& p);
void write_file(const fs::path& p, const std::string& content);

// Bytes a partial download (`blobs/<etag>.<8hex>.incomplete`) holds, from its
// resume journal: the engine sizes temp files up front, so their size says nothing
// about progress. 0 without a readable journal.
std::uint64_t partial_progress(const fs::path& incomplete);
// partial_progress of every partial in `blobs` (and the largest, when wanted).
std::uint64_t partials_progress(const fs::path& blobs, fs::path* largest = nullptr);

// Builds hub caches on disk exactly as Python huggingface_hub writes them.
class CacheBuilder {
 public:
  CacheBuilder(fs::path root, std::string repo_id, RepoType type = RepoType::model);

  enum class LinkStyle {
    relative,     // ../../blobs/<etag> (every version since 0.13.3)
    absolute,     // /abs/.../blobs/<etag> (0.13.0-0.13.2)
    real_file,    // no-symlink mode: a copy in snapshots/
    shared_store  // blobs/<etag> -> ../../blobs/<xx>/<hash> (shared Xet store)
  };
  // Adds `file` with `content` to snapshot `commit`. `lfs` names the blob by
  // sha256 (else the git blob sha1). Returns the blob name (etag).
  std::string add_file(const std::string& commit, const std::string& file, const std::string& content, bool lfs = false,
                       LinkStyle style = LinkStyle::relative);
  // Adds a file under a given blob name (for fixtures with fixed names, like seed 000).
  void add_file_named(const std::string& commit, const std::string& file, const std::string& etag,
                      const std::string& content, LinkStyle style = LinkStyle::relative);
  void set_ref(const std::string& ref, const std::string& commit);
  void add_no_exist(const std::string& commit, const std::string& file);
  fs::path repo_dir() const { return repo_dir_; }
  fs::path pointer(const std::string& commit, const std::string& file) const;

 private:
  fs::path root_;
  fs::path repo_dir_;
};

// A deterministic 40-hex commit id for tests ("c0ffee..." style).
std::string fake_commit(int n);

}  // namespace hubcache::test
