// The download engine: fills the missing byte ranges of one temp file from the
// CDN, over several connections for a large file and one stream otherwise.
// docs/architecture.md ("Downloads") describes the design; download.cpp owns the
// temp file, the claim, the verification and the publication around it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>

#include "http/client.hpp"
#include "hub/hub_client.hpp"
#include "hubcache/options.hpp"
#include "transfer/journal.hpp"
#include "transfer/prefix_hasher.hpp"
#include "transfer/watch.hpp"

namespace hubcache::transfer {

// Files smaller than this use one stream: a few more requests would cost more
// (handshakes, round trips) than they could save.
inline constexpr std::uint64_t kParallelMinSize = 8u << 20;
// Bounds of the adaptive chunk size (each connection asks for about two seconds
// of its own measured throughput).
inline constexpr std::uint64_t kMinChunk = 1u << 20;
inline constexpr std::uint64_t kMaxChunk = 64u << 20;

struct FetchJob {
  const hub::Context& ctx;
  const hub::FileMetadata& meta;  // location: the URL to GET (redirects are followed once)
  int fd;                         // the temp file, sized to meta.size, open read-write
  std::filesystem::path temp;     // its path: the journal sits next to it
  Journal& journal;               // in: the ranges already on disk; kept up to date on disk
  PrefixHasher& hasher;           // told how far the contiguous prefix reaches
  const Options& options;         // connections, max_bytes_per_second, progress, cancel
  // Told what is on disk; its wanted() offsets are fetched first (transfer/watch.hpp).
  DownloadWatch* watch = nullptr;
};

// Another process took our temp file by renaming it (the claim-by-rename scheme,
// where flock is a no-op). Nothing of ours may be written there any more.
class LostClaim : public std::runtime_error {
 public:
  LostClaim() : std::runtime_error("the partial download was claimed by another process") {}
};

// An error after which the partial file and its journal are worth keeping: the
// engine flushed the journal and a re-run resumes (say, the CDN refused a signed
// URL that expired mid-download: the re-run asks the Hub for a fresh one).
class ResumableError : public Error {
 public:
  using Error::Error;
};

// Downloads every byte of [0, meta.size) not in job.journal.done into job.fd.
// Returns when all bytes are written (the caller then finishes the hash).
// Throws Error: network after retries, cancelled and ResumableError (the journal
// is flushed: a re-run resumes), integrity (sizes disagree, more bytes than announced),
// disk_full / io (writes failed), an HTTP error class; or LostClaim.
void fetch_missing(http::Multi& multi, FetchJob& job);

// True while `fd` is still the file named `temp` (nobody renamed it away).
bool still_owned(int fd, const std::filesystem::path& temp);

}  // namespace hubcache::transfer
