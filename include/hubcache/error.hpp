// hubcache/error.hpp: the error taxonomy.
//
// Every failure hubcache reports is an hubcache::Error whose code() says what a
// user can do about it. The CLI maps each code to one exit status (see
// docs/cli.md, "Exit codes"); the numbers below are that mapping and are stable.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

// Exported by libhubcache.so, which is built with hidden visibility (cmake/hubcache.map.in).
#pragma GCC visibility push(default)
namespace hubcache {

enum class ErrorCode : int {
  internal = 1,            // a bug or an unexpected condition
  invalid_argument = 2,    // bad repo id, file name, revision, flag or URL
  not_cached = 3,          // offline (or no network) and the file is not in the cache
  repo_not_found = 4,      // repo does not exist, or is private and no valid token was sent
  gated = 5,               // gated repo: access must be requested on its page
  revision_not_found = 6,  // branch, tag or commit does not exist upstream
  entry_not_found = 7,     // the file does not exist at that revision
  integrity = 8,           // downloaded or cached bytes do not match their hash or size
  network = 9,             // connection, TLS, timeout, 5xx or 429 after retries
  disk_full = 10,          // no space left on the cache's filesystem
  io = 11,                 // any other filesystem error (permissions, read-only cache...)
  cancelled = 12,          // the caller's cancellation flag was raised
  http = 13,               // another HTTP status from the server (400, 403, 416...)
};

// A short stable name for a code ("repo_not_found"), used in JSON output.
std::string_view to_string(ErrorCode code);

// The CLI exit status for a code. Equal to the enum value.
constexpr int exit_code(ErrorCode code) { return static_cast<int>(code); }

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace hubcache
#pragma GCC visibility pop
