// Watching a download while it runs: the mirror (src/mirror) streams a file to its
// clients from the temp file as the bytes land, and steers the engine towards the
// bytes its clients wait for.
//
// A watch is installed for the downloads a thread starts, with ScopedDownloadWatch
// around the call (transfer::download_file and friends): the download code calls it
// on that thread, so no signature between the caller and the engine changes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "transfer/intervals.hpp"

namespace hubcache::transfer {

class DownloadWatch {
 public:
  virtual ~DownloadWatch() = default;
  // A temp file now receives the bytes: `fd` (read-write, open until the download
  // returns or the next started()) is `size` bytes long. A second call means the
  // earlier file's bytes are void (a resumed partial that failed its hash, a
  // partial another process claimed): readers of it must be stopped.
  virtual void started(int fd, const std::filesystem::path& temp, std::uint64_t size) = 0;
  // The byte ranges written to the current temp file so far. Only grows until restarted().
  virtual void progress(const IntervalSet& done) = 0;
  // Every byte written so far is void: the server restarted the body from byte 0
  // (it ignored a Range, or the object changed under If-Range).
  virtual void restarted() = 0;
  // Offsets readers wait for, ascending. A free connection starts at the first one
  // that is neither on disk nor about to arrive on a connection already running.
  virtual std::vector<std::uint64_t> wanted() = 0;
};

// The watch of downloads started on this thread, nullptr when none.
DownloadWatch* current_download_watch();

// Installs `watch` for downloads started on this thread while it lives.
class ScopedDownloadWatch {
 public:
  explicit ScopedDownloadWatch(DownloadWatch* watch);
  ~ScopedDownloadWatch();
  ScopedDownloadWatch(const ScopedDownloadWatch&) = delete;
  ScopedDownloadWatch& operator=(const ScopedDownloadWatch&) = delete;

 private:
  DownloadWatch* previous_;
};

}  // namespace hubcache::transfer
