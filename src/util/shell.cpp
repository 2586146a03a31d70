#include "util/shell.hpp"

namespace hubcache::util {

namespace {
bool plain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("_@%+=:,./-").find(c) != std::string_view::npos;
}
}  // namespace

std::string shell_quote(std::string_view word) {
  bool safe = !word.empty();
  for (char c : word) safe = safe && plain(c);
  if (safe) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

namespace {
// The length of "NAME=" when `word` starts with an environment assignment, else 0.
std::size_t assignment_prefix(std::string_view word) {
  std::size_t i = 0;
  while (i < word.size() && (word[i] == '_' || (word[i] >= 'A' && word[i] <= 'Z') ||
                             (word[i] >= 'a' && word[i] <= 'z') || (i > 0 && word[i] >= '0' && word[i] <= '9')))
    ++i;
  return i > 0 && i < word.size() && word[i] == '=' ? i + 1 : 0;
}
}  // namespace

std::string shell_command(const std::vector<std::string>& words) {
  std::string out;
  bool leading = true;  // still in the assignments before the command name
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    const std::size_t name = leading ? assignment_prefix(w) : 0;
    leading = name > 0;
    // NAME= stays unquoted, or the shell would take the whole word for a command name.
    out += name ? w.substr(0, name) + shell_quote(std::string_view(w).substr(name)) : shell_quote(w);
  }
  return out;
}

}  // namespace hubcache::util
