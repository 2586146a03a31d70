// Small POSIX filesystem helpers shared by the store and the transfer engine.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace hubcache::util {

// 8 random lowercase hex characters (unique temp-file suffixes).
std::string random_hex8();

// Reads a small file whole; nullopt if it does not exist or cannot be read.
std::optional<std::string> read_small_file(const std::filesystem::path& file);

// Writes `content` to `file` atomically: <file>.<8hex>.tmp, fsync, rename.
// Throws Error(disk_full) on ENOSPC, Error(io) otherwise; never leaves the temp file.
void atomic_write(const std::filesystem::path& file, std::string_view content);

// Copies `from` to `to` atomically: <to>.<8hex>.tmp, fsync, rename over `to`. Throws
// Error(disk_full) on ENOSPC, Error(io) otherwise; never leaves the temp file.
void copy_file_atomically(const std::filesystem::path& from, const std::filesystem::path& to);

// create_directories that throws Error(io | disk_full) with a clear message.
void make_dirs(const std::filesystem::path& dir);

// fsync a directory (makes a rename inside it durable). Errors are ignored:
// some filesystems do not support it.
void fsync_dir(const std::filesystem::path& dir);

// Throws Error(disk_full) for ENOSPC/EDQUOT, Error(io) otherwise.
[[noreturn]] void throw_errno(int err, const std::string& what);

// Is `path` a regular file after following symlinks (a complete cached file)?
bool is_regular_file(const std::filesystem::path& path);

}  // namespace hubcache::util
