// util::shell_quote and shell_command: the commands that messages suggest must
// give back exactly the intended words when a real shell parses them.
#include "util/shell.hpp"

#include <gtest/gtest.h>

#include "support/test_support.hpp"

using namespace hubcache;
using namespace hubcache::test;

TEST(Shell, PlainWordsStayAsTheyAreOthersAreSingleQuoted) {
  EXPECT_EQ(util::shell_quote("org/model-v1.0_x"), "org/model-v1.0_x");
  EXPECT_EQ(util::shell_quote("--cache-dir"), "--cache-dir");
  EXPECT_EQ(util::shell_quote("HF_HUB_OFFLINE=0"), "HF_HUB_OFFLINE=0");
  EXPECT_EQ(util::shell_quote(""), "''");
  EXPECT_EQ(util::shell_quote("a b"), "'a b'");
  EXPECT_EQ(util::shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(util::shell_quote("~/x"), "'~/x'");
  EXPECT_EQ(util::shell_command({"hubcache", "download", "org/m", "a b.txt"}), "hubcache download org/m 'a b.txt'");
}

// Every word comes back byte for byte from sh and from bash, whatever it holds.
TEST(Shell, ARealShellParsesTheCommandBackIntoTheSameWords) {
  const std::vector<std::string> words = {
      "printf",  "%s|",           "plain",        "with space",  "it's",          "'",        "''",    "$HOME",
      "${PATH}", "$(echo pwned)", "`echo pwned`", "a;b&&c||d|e", "<in >out 2>&1", "*.json",   "?[ab]", "~root",
      "!event",  "tab\there",     "new\nline",    "back\\slash", "\"double\"",    "#comment", "{a,b}", "-n",
      "",        "caf\xc3\xa9"};
  // words[1] is printf's format, applied to every argument after it.
  std::string expected;
  for (std::size_t i = 2; i < words.size(); ++i) expected += words[i] + "|";
  const std::string command = util::shell_command(words);
  for (const char* shell : {"/bin/sh", "/bin/bash"}) {
    auto r = run({shell, "-c", command}, {{"HOME", "/home/nobody-here"}});
    EXPECT_EQ(r.exit_code, 0) << shell << ": " << command << "\n" << r.err;
    EXPECT_EQ(r.out, expected) << shell << ": " << command;
  }
}

// A leading NAME=value word is an environment assignment only while its NAME= part is
// unquoted: 'HF_ENDPOINT=http://h/a b' would be run as a command of that name. The value
// alone is quoted, and the command sees it byte for byte.
TEST(Shell, AnAssignmentWhoseValueNeedsQuotesStaysAnAssignment) {
  EXPECT_EQ(util::shell_command({"HF_ENDPOINT=http://h:8080/a b", "hubcache"}),
            "HF_ENDPOINT='http://h:8080/a b' hubcache");
  EXPECT_EQ(util::shell_command({"A=", "hubcache"}), "A='' hubcache");
  // Only leading words: later ones are arguments, quoted whole as any other word.
  EXPECT_EQ(util::shell_command({"hubcache", "A=b c"}), "hubcache 'A=b c'");
  const std::string value = "http://h/it's $HOME;(1) & \"q\"";
  const std::string command =
      util::shell_command({"HUBCACHE_T1=" + value, "HUBCACHE_T2=x y", "printenv", "HUBCACHE_T1", "HUBCACHE_T2"});
  for (const char* shell : {"/bin/sh", "/bin/bash"}) {
    auto r = run({shell, "-c", command}, {});
    EXPECT_EQ(r.exit_code, 0) << shell << ": " << command << "\n" << r.err;
    EXPECT_EQ(r.out, value + "\nx y\n") << shell << ": " << command;
  }
}
