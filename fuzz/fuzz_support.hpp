// Shared by the fuzz targets: a check that survives NDEBUG and shows the input that broke
// it, and a guard that lets only hubcache::Error out of a parser (anything else, such as a
// nlohmann::json type_error, is a bug: callers only handle hubcache::Error).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include "hubcache/error.hpp"

namespace hubcache::fuzz {

// "a\x00b" style rendering so a failure message shows bytes unambiguously.
inline std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out + "\"";
}

[[noreturn]] inline void check_failed(const char* file, int line, const char* cond, const std::string& detail) {
  std::fprintf(stderr, "%s:%d: property violated: %s\n  %s\n", file, line, cond, detail.c_str());
  std::abort();
}

// Calls `f`; returns false when it threw hubcache::Error, true when it returned.
template <class F>
bool only_hubcache_errors(const char* what, F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s threw %s (not hubcache::Error): %s\n", what, typeid(e).name(), e.what());
    std::abort();
  }
}

}  // namespace hubcache::fuzz

// FUZZ_CHECK(condition, detail-string): aborts with the detail when the property fails.
#define FUZZ_CHECK(cond, detail)                                                      \
  do {                                                                                \
    if (!(cond)) ::hubcache::fuzz::check_failed(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)
