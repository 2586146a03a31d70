// Misbehaving file systems for one test: real mounts where the machine permits them
// (a small tmpfs that fills up, a read-only bind mount), and the LD_PRELOAD fault
// shim (tests/support/shim/fs_fault_shim.cpp) where it does not, or for faults no
// real file system produces on demand (EIO on fsync, EPERM on symlink, no-op flock).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace hubcache::test {

using Env = std::map<std::string, std::optional<std::string>>;

// `env` plus LD_PRELOAD of the fault shim and its HUBCACHE_FSFAULT_* settings, e.g.
// {{"WRITE", "ENOSPC:100000@.incomplete"}}. Failures the shim injects are logged
// to `log` when given (one line per failure).
Env with_fs_faults(Env env, const std::map<std::string, std::string>& faults, const std::filesystem::path& log = {});

// Real mounts in a private mount namespace: the test process (and the CLI it
// starts) see them, the host's mount table never does, and they vanish with the
// process even if it crashes. Needs root with CAP_SYS_ADMIN (CI containers usually
// lack it) and is off when HUBCACHE_TEST_NO_MOUNTS=1 (to exercise the fallbacks).
// `why` says what failed.
bool private_mounts_available(std::string* why = nullptr);

// A mount undone on destruction. Declare it after the TempDir it lives in.
class Mount {
 public:
  // A tmpfs of `bytes` at `dir` (created if needed); nullptr when not permitted.
  static std::unique_ptr<Mount> tmpfs(const std::filesystem::path& dir, std::uint64_t bytes);
  // `dir` bound onto itself read-only (EROFS for everyone, root included); nullptr when not permitted.
  static std::unique_ptr<Mount> read_only(const std::filesystem::path& dir);
  ~Mount();
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;

 private:
  explicit Mount(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace hubcache::test
