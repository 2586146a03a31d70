#include "support/test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "layout/naming.hpp"
#include "transfer/journal.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"

extern char** environ;

namespace hubcache::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/hubcache-test-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = fs::canonical(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  // Make read-only fixtures removable again.
  for (auto it = fs::recursive_directory_iterator(path_, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  }
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

namespace {
bool scrubbed(const std::string& name) {
  return name.rfind("HF_", 0) == 0 || name.rfind("HUGGING", 0) == 0 || name == "XDG_CACHE_HOME" ||
         name == "TRANSFORMERS_OFFLINE" || name == "http_proxy" || name == "https_proxy" || name == "HTTP_PROXY" ||
         name == "HTTPS_PROXY" || name == "ALL_PROXY" || name == "all_proxy" || name == "NO_PROXY" ||
         name == "no_proxy";
}
}  // namespace

std::vector<std::string> child_environment(const std::map<std::string, std::optional<std::string>>& env) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string name = kv.substr(0, eq);
    if (!scrubbed(name)) vars[name] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) {
    if (v)
      vars[k] = *v;
    else
      vars.erase(k);
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : vars) env_strings.push_back(k + "=" + v);
  return env_strings;
}

namespace {
// argv and envp for posix_spawn or execve, built before the child starts: the char* arrays point
// into the strings kept alongside them.
struct ChildCommand {
  std::vector<std::string> args, env_strings;
  std::vector<char*> argv, envp;
  ChildCommand(std::vector<std::string> arguments, const std::map<std::string, std::optional<std::string>>& env)
      : args(std::move(arguments)), env_strings(child_environment(env)) {
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  ChildCommand(const ChildCommand&) = delete;
  ChildCommand& operator=(const ChildCommand&) = delete;
};

std::vector<std::string> cli_argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv{cli_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}
}  // namespace

pid_t spawn_cli(const std::vector<std::string>& args, const std::map<std::string, std::optional<std::string>>& env,
                const fs::path& output) {
  return spawn_process(cli_argv(args), env, output);
}

pid_t spawn_process(const std::vector<std::string>& argv, const std::map<std::string, std::optional<std::string>>& env,
                    const fs::path& output) {
  ChildCommand cmd(argv, env);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid;
  int rc = ::posix_spawn(&pid, cmd.argv[0], &actions, nullptr, cmd.argv.data(), cmd.envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot run " + cmd.args[0] + ": " + std::strerror(rc));
  return pid;
}

RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::optional<std::string>>& env,
              std::chrono::seconds timeout, const std::string& stdin_data) {
  ChildCommand cmd(argv, env);

  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC) || ::pipe2(in_pipe, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  pid_t pid;
  int rc = ::posix_spawn(&pid, cmd.argv[0], &actions, nullptr, cmd.argv.data(), cmd.envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(in_pipe[0]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    ::close(in_pipe[1]);
    throw std::runtime_error("cannot run " + cmd.args[0] + ": " + std::strerror(rc));
  }
  if (!stdin_data.empty()) {
    auto ignored = ::write(in_pipe[1], stdin_data.data(), stdin_data.size());
    (void)ignored;
  }
  ::close(in_pipe[1]);

  RunResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(got));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

namespace {
std::string& cli_override() {
  static std::string path;
  return path;
}
}  // namespace

std::string cli_path() {
  if (!cli_override().empty()) return cli_override();
  if (const char* env = std::getenv("HUBCACHE_TEST_CLI"); env && *env) return env;
  return HUBCACHE_CLI;
}

void use_cli(const fs::path& cli) { cli_override() = cli.string(); }

int start_cli(const std::vector<std::string>& args, const std::map<std::string, std::optional<std::string>>& env) {
  ChildCommand cmd(cli_argv(args), env);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0);
  pid_t pid;
  int rc = ::posix_spawn(&pid, cmd.argv[0], &actions, nullptr, cmd.argv.data(), cmd.envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + cmd.args[0] + ": " + std::strerror(rc));
  return pid;
}

int wait_cli(int pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TerminalResult run_cli_in_terminal(const std::vector<std::string>& args,
                                   const std::map<std::string, std::optional<std::string>>& env,
                                   bool stdout_on_terminal, const std::string& typed, std::chrono::seconds timeout) {
  // Everything the child needs is built before fork(): after it, only async-signal-safe calls.
  ChildCommand cmd(cli_argv(args), env);

  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) throw std::runtime_error("no pseudo-terminal");
  std::string slave_name = ::ptsname(master);
  winsize ws{};
  ws.ws_row = 24;
  ws.ws_col = 120;
  ::ioctl(master, TIOCSWINSZ, &ws);
  int out_pipe[2] = {-1, -1};
  if (!stdout_on_terminal && ::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");

  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::setsid();
    int slave = ::open(slave_name.c_str(), O_RDWR);
    if (slave < 0) ::_exit(127);
    ::ioctl(slave, TIOCSCTTY, 0);
    ::dup2(slave, 0);
    ::dup2(stdout_on_terminal ? slave : out_pipe[1], 1);
    ::dup2(slave, 2);
    if (slave > 2) ::close(slave);
    ::execve(cmd.argv[0], cmd.argv.data(), cmd.envp.data());
    ::_exit(127);
  }
  if (out_pipe[1] >= 0) ::close(out_pipe[1]);
  if (!typed.empty()) {
    auto ignored = ::write(master, typed.data(), typed.size());
    (void)ignored;
  }

  TerminalResult result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{master, POLLIN, 0}, {out_pipe[0], POLLIN, 0}};
  int open_fds = out_pipe[0] >= 0 ? 2 : 1;
  char buf[65536];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 200)));
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {  // EIO on the master once the child and its descendants closed the terminal
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.terminal : result.piped_stdout).append(buf, static_cast<std::size_t>(got));
      }
    }
  }
  ::close(master);
  if (out_pipe[0] >= 0) ::close(out_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

RunResult run_cli(const std::vector<std::string>& args, const std::map<std::string, std::optional<std::string>>& env,
                  std::chrono::seconds timeout) {
  return run(cli_argv(args), env, timeout);
}

std::string last_line(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
}

std::uint64_t partial_progress(const fs::path& incomplete) {
  std::error_code ec;
  const auto size = fs::file_size(incomplete, ec);
  if (ec) return 0;
  auto text = util::read_small_file(transfer::sidecar_of(incomplete));
  if (!text) return 0;
  auto journal = transfer::parse_journal(*text, size);
  return journal ? journal->done.total() : 0;
}

std::uint64_t partials_progress(const fs::path& blobs, fs::path* largest) {
  std::uint64_t total = 0, best = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(blobs, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->path().extension() != ".incomplete") continue;
    const auto n = partial_progress(it->path());
    total += n;
    if (largest && n > best) {
      best = n;
      *largest = it->path();
    }
  }
  return total;
}

CacheBuilder::CacheBuilder(fs::path root, std::string repo_id, RepoType type)
    : root_(std::move(root)), repo_dir_(root_ / layout::repo_folder_name(repo_id, type)) {
  fs::create_directories(repo_dir_ / "blobs");
  fs::create_directories(repo_dir_ / "snapshots");
}

fs::path CacheBuilder::pointer(const std::string& commit, const std::string& file) const {
  return repo_dir_ / "snapshots" / commit / file;
}

std::string CacheBuilder::add_file(const std::string& commit, const std::string& file, const std::string& content,
                                   bool lfs, LinkStyle style) {
  std::string etag = lfs ? util::sha256_hex(content) : util::git_blob_sha1_hex(content);
  add_file_named(commit, file, etag, content, style);
  return etag;
}

void CacheBuilder::add_file_named(const std::string& commit, const std::string& file, const std::string& etag,
                                  const std::string& content, LinkStyle style) {
  auto ptr = pointer(commit, file);
  fs::create_directories(ptr.parent_path());
  auto blob = repo_dir_ / "blobs" / etag;
  switch (style) {
    case LinkStyle::relative:
      write_file(blob, content);
      fs::create_symlink(layout::relative_link_target(ptr, blob), ptr);
      break;
    case LinkStyle::absolute:
      write_file(blob, content);
      fs::create_symlink(blob, ptr);
      break;
    case LinkStyle::real_file:
      write_file(ptr, content);
      break;
    case LinkStyle::shared_store: {
      auto hash = util::sha256_hex(content);
      auto store = root_ / "blobs" / hash.substr(0, 2) / hash;
      write_file(store, content);
      write_file(root_ / "blobs" / ".huggingface-shared-blobs", "1\n");
      fs::create_symlink(layout::relative_link_target(blob, store), blob);
      fs::create_symlink(layout::relative_link_target(ptr, blob), ptr);
      break;
    }
  }
}

void CacheBuilder::set_ref(const std::string& ref, const std::string& commit) {
  write_file(repo_dir_ / "refs" / ref, commit);
}

void CacheBuilder::add_no_exist(const std::string& commit, const std::string& file) {
  write_file(repo_dir_ / ".no_exist" / commit / file, "");
}

std::string fake_commit(int n) {
  std::string hex = util::sha256_hex("commit-" + std::to_string(n));
  return hex.substr(0, 40);
}

}  // namespace hubcache::test
