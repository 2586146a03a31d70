#include "support/fs_faults.hpp"

#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace hubcache::test {

namespace fs = std::filesystem;

Env with_fs_faults(Env env, const std::map<std::string, std::string>& faults, const fs::path& log) {
  env["LD_PRELOAD"] = std::string(HUBCACHE_FS_SHIM);
  for (const auto& [name, value] : faults) env["HUBCACHE_FSFAULT_" + name] = value;
  if (!log.empty()) env["HUBCACHE_FSFAULT_LOG"] = log.string();
  return env;
}

bool private_mounts_available(std::string* why) {
  static std::once_flag once;
  static bool ok = false;
  static std::string reason;
  std::call_once(once, [] {
    if (const char* off = std::getenv("HUBCACHE_TEST_NO_MOUNTS"); off && *off && std::strcmp(off, "0") != 0) {
      reason = "HUBCACHE_TEST_NO_MOUNTS is set";
      return;
    }
    // Only this thread (and the processes and threads it starts later) moves to the
    // new namespace; nothing it mounts propagates back to the host.
    if (::unshare(CLONE_NEWNS) != 0) {
      reason = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
      return;
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      reason = std::string("mount --make-rprivate /: ") + std::strerror(errno);
      return;
    }
    ok = true;
  });
  if (why) *why = reason;
  return ok;
}

std::unique_ptr<Mount> Mount::tmpfs(const fs::path& dir, std::uint64_t bytes) {
  if (!private_mounts_available()) return nullptr;
  fs::create_directories(dir);
  const std::string options = "size=" + std::to_string(bytes) + ",mode=0755";
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) return nullptr;
  return std::unique_ptr<Mount>(new Mount(dir));
}

std::unique_ptr<Mount> Mount::read_only(const fs::path& dir) {
  if (!private_mounts_available()) return nullptr;
  if (::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return nullptr;
  std::unique_ptr<Mount> m(new Mount(dir));
  if (::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) return nullptr;
  return m;
}

Mount::~Mount() { ::umount2(dir_.c_str(), MNT_DETACH); }

}  // namespace hubcache::test
