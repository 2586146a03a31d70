// Every message that suggests a command gives one that works when pasted into a
// shell: its flags inside it, every word shell-quoted (util::shell_command). Each
// test takes the commands out of a real error message (between backticks), runs
// them with bash as a person pasting them would, and checks that they do the job,
// with names full of spaces and shell characters.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "support/cli_fixture.hpp"
#include "support/fs_faults.hpp"
#include "util/hash.hpp"

using namespace hubcache;
using namespace hubcache::test;
namespace fs = std::filesystem;

namespace {

// Spaces, quotes, $, ;, &, parentheses, # and a glob-free name: a shell mangles
// each of them unless the word is quoted.
const std::string kWeirdFile = "dir with space/it's a $HOME;(1) & \"q\" #x.txt";
const std::string kWeirdDir = "my cache/it's $here";

class SuggestedCommands : public CliAgainstFaultServer {
 protected:
  // The commands in a message: the text between each pair of backticks.
  static std::vector<std::string> commands_in(const std::string& message) {
    std::vector<std::string> out;
    for (std::size_t a = message.find('`'); a != std::string::npos; a = message.find('`', a + 1)) {
      auto b = message.find('`', a + 1);
      if (b == std::string::npos) break;
      out.push_back(message.substr(a + 1, b - a - 1));
      a = b;
    }
    return out;
  }
  // The first command of `message` that contains `word`.
  static std::string command_with(const std::string& message, const std::string& word) {
    for (const auto& c : commands_in(message))
      if (c.find(word) != std::string::npos) return c;
    ADD_FAILURE() << "no command with '" << word << "' in: " << message;
    return "false";
  }
  // Pastes `command` into bash, in a shell whose PATH finds `bin_dir`'s hubcache first
  // (the CLI under test by default), in the test's environment plus `extra`.
  RunResult paste(const std::string& command, const Env& extra = {}, const fs::path& bin_dir = {}) {
    auto e = env_with(extra);
    const char* path = std::getenv("PATH");
    e["PATH"] = (bin_dir.empty() ? fs::path(cli_path()).parent_path() : bin_dir).string() + ":" +
                (path ? path : "/usr/bin:/bin");
    return run({"/bin/bash", "-c", command}, e);
  }
  std::string commit() { return server.commit_of("org/m"); }
};

}  // namespace

// The example: offline, a file that is not cached, --cache-dir. The command
// puts the flag inside, quotes the names, and undoes HF_HUB_OFFLINE=1 of the shell
// it is pasted into (else it would fail the same way).
TEST_F(SuggestedCommands, NotCachedOfflineGivesADownloadThatWorksWhenPasted) {
  server.add_file("org/m", kWeirdFile, "weird content");
  const fs::path cache = dir / kWeirdDir;
  const Env offline = {{"HF_HUB_OFFLINE", "1"}, {"HF_HUB_CACHE", std::nullopt}};
  for (const std::string cmd : {"download", "path"}) {
    auto r = run_cli({cmd, "org/m", kWeirdFile, "--cache-dir", cache.string()}, env_with(offline));
    ASSERT_EQ(r.exit_code, 3) << r.err;
    EXPECT_NE(r.err.find("not in the cache at " + cache.string()), std::string::npos) << r.err;
    const auto suggested = command_with(r.err, "hubcache download");
    EXPECT_EQ(suggested.rfind("HF_HUB_OFFLINE=0 hubcache download org/m ", 0), 0u) << suggested;
    EXPECT_NE(suggested.find("--cache-dir"), std::string::npos) << "flags inside the command: " << r.err;
  }
  auto r = run_cli({"download", "org/m", kWeirdFile, "--cache-dir", cache.string()}, env_with(offline));
  auto p = paste(command_with(r.err, "hubcache download"), offline);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const auto expected = cache / "models--org--m/snapshots" / commit() / kWeirdFile;
  EXPECT_EQ(last_line(p.out), expected.string());
  EXPECT_EQ(read_file(expected), "weird content");
  EXPECT_FALSE(fs::exists(dir / "cache")) << "the pasted command used the cache it named, not the default one";
  // --offline (not the environment): the suggestion simply leaves the flag out.
  server.add_file("org/m", "b.txt", "b");
  r = run_cli({"download", "org/m", "b.txt", "--cache-dir", cache.string(), "--offline"}, env());
  ASSERT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(command_with(r.err, "hubcache").rfind("hubcache download org/m b.txt --cache-dir '", 0), 0u) << r.err;
  p = paste(command_with(r.err, "hubcache"));
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(read_file(last_line(p.out)), "b");
}

// Flags the user gave come back inside the command, in words a shell does not
// split or expand: a stand-in `hubcache` prints the words it receives.
TEST_F(SuggestedCommands, RevisionRepoTypeLayoutAndLocalDirComeBackAsTheSameWords) {
  const fs::path bin = dir / "bin";
  write_file(bin / "hubcache", "#!/bin/sh\nprintf 'HF_HUB_OFFLINE=%s\\n' \"$HF_HUB_OFFLINE\"\nprintf '[%s]' \"$@\"\n");
  ::chmod((bin / "hubcache").c_str(), 0755);
  const std::string rev = "it's a $branch (v1)";
  const std::string cache = (dir / kWeirdDir).string();
  struct Case {
    std::vector<std::string> args;
    std::string words;  // what the stand-in must receive
  };
  const std::vector<Case> cases = {
      {{"download", "org/m", kWeirdFile, "--revision", rev, "--repo-type", "dataset", "--cache-dir", cache},
       "[download][org/m][" + kWeirdFile + "][--repo-type][dataset][--revision][" + rev + "][--cache-dir][" + cache +
           "]"},
      {{"path", "org/m", kWeirdFile, "--revision", rev, "--repo-type", "space", "--cache-dir", cache},
       "[download][org/m][" + kWeirdFile + "][--repo-type][space][--revision][" + rev + "][--cache-dir][" + cache +
           "]"},
      {{"download", "org/m", kWeirdFile, "--layout", "flat", "--cache-dir", cache},
       "[download][org/m][" + kWeirdFile + "][--cache-dir][" + cache + "][--layout][flat]"},
      {{"download", "org/m", "--revision", rev, "--local-dir", cache},
       "[download][org/m][--revision][" + rev + "][--local-dir][" + cache + "]"},
      // A name that starts with '-' is not taken for a flag: `--` ends the flags.
      {{"download", "--cache-dir", cache, "--", "org/m", "-rf x.txt"},
       "[download][--cache-dir][" + cache + "][--][org/m][-rf x.txt]"},
  };
  for (const auto& c : cases) {
    auto r = run_cli(c.args, env_with({{"HF_HUB_OFFLINE", "1"}}));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    auto p = paste(command_with(r.err, "hubcache download"), {{"HF_HUB_OFFLINE", "1"}}, bin);
    EXPECT_EQ(p.exit_code, 0) << p.err;
    EXPECT_EQ(p.out, "HF_HUB_OFFLINE=0\n" + c.words) << r.err;
  }
  // The real CLI takes `--` as the end of the flags, so that command works too.
  server.add_file("org/m", "-rf x.txt", "dash");
  auto r = run_cli({"download", "--cache-dir", cache, "--offline", "--", "org/m", "-rf x.txt"}, env());
  ASSERT_EQ(r.exit_code, 3) << r.err;
  auto p = paste(command_with(r.err, "hubcache download"));
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(read_file(last_line(p.out)), "dash");
}

// An unreachable Hub: the message says what was tried (the endpoint and why it
// failed), where the cache is, the two ways forward, and the command to run once
// the Hub (here: HF_ENDPOINT at the live server) can be reached.
TEST_F(SuggestedCommands, UnreachableHubSaysWhatWasTriedWhereTheCacheIsAndWhatToDo) {
  server.add_file("org/m", kWeirdFile, "weird content");
  const fs::path cache = dir / kWeirdDir;
  const Env unreachable = {{"HF_ENDPOINT", "http://127.0.0.1:9"}, {"HUBCACHE_MAX_RETRIES", "0"}};
  for (bool whole_repo : {false, true}) {
    std::vector<std::string> args{"download", "org/m"};
    if (!whole_repo) args.push_back(kWeirdFile);
    args.insert(args.end(), {"--cache-dir", cache.string()});
    auto r = run_cli(args, env_with(unreachable));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    for (const std::string& part :
         std::vector<std::string>{"Cannot reach the Hub at http://127.0.0.1:9 (HF_ENDPOINT): Couldn't connect",
                                  "not in the cache at " + cache.string(), "HTTPS_PROXY", "mirror",
                                  "copy that cache to " + cache.string(), "HF_HUB_OFFLINE=1", "hubcache serve"})
      EXPECT_NE(r.err.find(part), std::string::npos) << part << " in: " << r.err;
    auto p = paste(command_with(r.err, "hubcache download"));
    ASSERT_EQ(p.exit_code, 0) << p.err;
    const auto snap = cache / "models--org--m/snapshots" / commit();
    EXPECT_EQ(last_line(p.out), (whole_repo ? snap : snap / kWeirdFile).string());
    EXPECT_EQ(read_file(snap / kWeirdFile), "weird content");
    fs::remove_all(cache);
  }
}

// A whole repo offline into a local dir: the command keeps --local-dir.
TEST_F(SuggestedCommands, OfflineLocalDirGivesTheDownloadIntoThatFolder) {
  server.add_file("org/m", kWeirdFile, "weird content");
  const fs::path local = dir / kWeirdDir;
  auto r = cli({"download", "org/m", "--local-dir", local.string(), "--offline"});
  ASSERT_EQ(r.exit_code, 3) << r.err;
  auto p = paste(command_with(r.err, "hubcache download"));
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(read_file(local / kWeirdFile), "weird content");
}

// verify: the failed revision's `hubcache rm` and `hubcache download`, with the cache
// they are about, repair it when pasted (-y added: the pasted rm asks on a terminal).
TEST_F(SuggestedCommands, FailedVerifyGivesTheRmAndDownloadThatRepairIt) {
  server.add_file("org/m", "w.bin", "lfs content", true);
  const fs::path cache = dir / kWeirdDir;
  ASSERT_EQ(run_cli({"download", "org/m", "w.bin", "--cache-dir", cache.string()}, env()).exit_code, 0);
  const auto blob = cache / "models--org--m/blobs" / util::sha256_hex("lfs content");
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  write_file(blob, "bit rot!!!!");
  auto r = run_cli({"verify", "org/m", "--offline", "--cache-dir", cache.string()});
  ASSERT_EQ(r.exit_code, 8) << r.out << r.err;
  auto p = paste(command_with(r.err, "hubcache rm") + " -y");
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;
  p = paste(command_with(r.err, "hubcache download"));
  ASSERT_EQ(p.exit_code, 0) << p.err;
  r = run_cli({"verify", "org/m", "--offline", "--cache-dir", cache.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// ls counting partial downloads: the `hubcache prune` it suggests is about the same cache.
TEST_F(SuggestedCommands, LsGivesThePruneOfTheCacheItListed) {
  server.add_file("org/m", "a.txt", "a");
  const fs::path cache = dir / kWeirdDir;
  ASSERT_EQ(run_cli({"download", "org/m", "a.txt", "--cache-dir", cache.string()}, env()).exit_code, 0);
  write_file(cache / "models--org--m/blobs/0123abcd.0badf00d.incomplete", "partial");
  auto r = run_cli({"ls", "--cache-dir", cache.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto prune = command_with(r.err, "hubcache prune");
  auto p = paste(prune + " --dry-run");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.out.find("0123abcd.0badf00d.incomplete"), std::string::npos) << p.out;
  p = paste(prune + " -y");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_FALSE(fs::exists(cache / "models--org--m/blobs/0123abcd.0badf00d.incomplete"));
}

// A full disk: the `hubcache gc` it suggests runs (as a dry run) on that very cache.
TEST_F(SuggestedCommands, FullDiskGivesTheGcOfThatCache) {
  server.add_file("org/m", "a.txt", "a few bytes");
  server.add_file("org/m", "big.bin", test_bytes(300'000, 7), true);
  const fs::path cache = dir / kWeirdDir;
  ASSERT_EQ(run_cli({"download", "org/m", "a.txt", "--cache-dir", cache.string()}, env()).exit_code, 0);
  auto r = run_cli({"download", "org/m", "big.bin", "--cache-dir", cache.string()},
                   with_fs_faults(env(), {{"WRITE", "ENOSPC:100000@/blobs/"}}));
  ASSERT_EQ(r.exit_code, 10) << r.err;
  const auto gc = command_with(r.err, "hubcache gc");
  EXPECT_NE(gc.find("--dry-run"), std::string::npos) << gc;
  EXPECT_NE(gc.find("--cache-dir"), std::string::npos) << gc;
  auto p = paste(gc);
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;
  // With a limit the cache exceeds, the same words list what would go from that cache.
  const auto limit = gc.find(" 10G ");
  ASSERT_NE(limit, std::string::npos) << gc;
  p = paste(gc.substr(0, limit) + " 1 " + gc.substr(limit + 5));
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;
  EXPECT_NE(p.out.find("org/m"), std::string::npos) << p.out;
  EXPECT_TRUE(fs::exists(cache / "models--org--m/snapshots" / commit() / "a.txt")) << "a dry run deletes nothing";
}
