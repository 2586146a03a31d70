// Commands suggested in messages, written so they work when pasted into a shell.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hubcache::util {

// `word` as one POSIX shell word: as it is when every character is one no shell
// treats specially (letters, digits, and _ @ % + = : , . / -), else in single
// quotes with each ' written as '\''. The empty word is ''.
std::string shell_quote(std::string_view word);

// The words joined by spaces, each quoted by shell_quote: one command line that
// runs `words` exactly when pasted into sh, bash or zsh. Leading NAME=value words
// are environment assignments for the command: their value alone is quoted.
std::string shell_command(const std::vector<std::string>& words);

}  // namespace hubcache::util
