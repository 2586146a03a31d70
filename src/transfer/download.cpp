// Downloads into the cache: hf_hub_download's algorithm (reference §3.7) with
// verified content and resume across runs.
//
// Resume design. Each download writes into its own temp file
// `<dest>.<8hex>.incomplete` next to a sidecar `<temp>.resume` that records the
// etag, expected size and URL. A later run that holds the etag's flock looks for
// a partial of the same etag and size, and *claims* it by renaming it to a fresh
// unique name: rename is atomic, so even where flock is a silent no-op (Lustre,
// GPFS, some NFS) only one process can win a given partial, and no two writers
// ever share a file. The claimant re-hashes the prefix it adopts, then asks for
// the rest with `Range: bytes=N-` and `If-Range: "<etag>"`: a server whose object
// changed answers 200 with the whole body and the file restarts from zero. The
// final size and hash check (sha256 or git blob sha1, named by the etag) is the
// last word: a bad resumed file is discarded and downloaded once more from zero.
#include "transfer/download.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "http/client.hpp"
#include "hub/hub_client.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"

namespace hubcache::transfer {

namespace fs = std::filesystem;

namespace {

mode_t file_mode() {
  // The mode a fresh file gets under the umask (0644 / 0664): blobs must be
  // readable by everyone sharing the cache, not 0600 (huggingface_hub #1141).
  static const mode_t mode = [] {
    mode_t mask = ::umask(022);
    ::umask(mask);
    return static_cast<mode_t>(0666 & ~mask);
  }();
  return mode;
}

fs::path sidecar_of(const fs::path& temp) {
  auto p = temp;
  p += ".resume";
  return p;
}

struct Partial {
  fs::path path;
  std::uint64_t size;
};

// Claims the largest resumable partial of `dest` (same etag and size) by renaming it.
std::optional<Partial> claim_partial(const fs::path& dest, const std::string& etag, std::uint64_t size) {
  const std::string prefix = dest.filename().string() + ".";
  std::error_code ec;
  std::optional<Partial> best;
  for (auto it = fs::directory_iterator(dest.parent_path(), ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0 || name.size() < 11 || name.substr(name.size() - 11) != ".incomplete") continue;
    auto side = util::read_small_file(sidecar_of(it->path()));
    if (!side) continue;
    auto j = nlohmann::json::parse(*side, nullptr, false);
    if (j.is_discarded() || j.value("etag", "") != etag || j.value("size", std::uint64_t{0}) != size) continue;
    std::error_code sec;
    auto have = fs::file_size(it->path(), sec);
    if (sec || have == 0 || have > size) continue;
    if (!best || have > best->size) best = Partial{it->path(), have};
  }
  if (!best) return std::nullopt;
  fs::path claimed = dest;
  claimed += "." + util::random_hex8() + ".incomplete";
  if (::rename(best->path.c_str(), claimed.c_str()) != 0) return std::nullopt;  // another process won it
  ::rename(sidecar_of(best->path).c_str(), sidecar_of(claimed).c_str());
  best->path = claimed;
  return best;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  void close() {
    if (fd_ >= 0 && ::close(fd_) != 0) util::throw_errno(errno, "Cannot close a downloaded file");
    fd_ = -1;
  }

 private:
  int fd_;
};

void remove_temp(const fs::path& temp) {
  ::unlink(temp.c_str());
  ::unlink(sidecar_of(temp).c_str());
}

std::uint64_t parse_content_range_start(const std::string& v) {
  // "bytes a-b/N"
  auto sp = v.find(' ');
  return std::strtoull(v.c_str() + (sp == std::string::npos ? 0 : sp + 1), nullptr, 10);
}

// Streams `meta.location` into `dest` (verified, then renamed into place).
void download_verified(http::Client& client, const hub::Context& ctx, const hub::FileMetadata& meta,
                       const fs::path& dest, const Options& options, bool allow_resume = true) {
  util::HashKind kind{};
  const bool verify = util::hash_kind_for_etag(meta.etag, kind);
  const Settings& settings = Settings::get();

  fs::path temp;
  std::uint64_t offset = 0;
  if (auto partial = allow_resume ? claim_partial(dest, meta.etag, meta.size) : std::nullopt) {
    temp = partial->path;
    offset = partial->size;
  } else {
    temp = dest;
    temp += "." + util::random_hex8() + ".incomplete";
  }
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) util::throw_errno(errno, "Cannot create " + temp.string());
  try {
    util::atomic_write(sidecar_of(temp),
                       nlohmann::json{{"etag", meta.etag}, {"size", meta.size}, {"url", meta.location}}.dump());
  } catch (const Error&) {
    remove_temp(temp);
    throw;
  }

  util::Hasher hasher(kind, meta.size);
  if (offset > 0) {
    // Adopt the prefix: hash what is already there.
    int rfd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
    std::vector<char> buf(1 << 20);
    std::uint64_t done = 0;
    while (rfd >= 0 && done < offset) {
      ssize_t n = ::read(rfd, buf.data(), std::min<std::uint64_t>(buf.size(), offset - done));
      if (n <= 0) break;
      hasher.update(buf.data(), static_cast<std::size_t>(n));
      done += static_cast<std::uint64_t>(n);
    }
    if (rfd >= 0) ::close(rfd);
    if (done != offset) {
      offset = 0;
      hasher = util::Hasher(kind, meta.size);
    }
  }
  const bool resumed = offset > 0;
  if (::ftruncate(fd.get(), static_cast<off_t>(offset)) != 0 || ::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
    util::throw_errno(errno, "Cannot write " + temp.string());

  auto report = [&](bool finished) {
    if (options.progress) options.progress(ProgressEvent{ctx.repo_id, ctx.file, offset, meta.size, finished});
  };
  report(false);

  std::string url = meta.location;
  int failures = 0, hops = 0;
  int write_errno = 0;
  bool overflow = false;
  while (true) {
    if (offset == meta.size && meta.size > 0) break;
    http::Request req;
    req.url = url;
    req.headers = hub::request_headers(ctx, url);  // Authorization only on the endpoint's origin
    if (offset > 0) {
      req.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-");
      req.headers.emplace_back("If-Range", "\"" + meta.etag + "\"");
    }
    req.connect_timeout = ctx.download_timeout;
    req.read_timeout = ctx.download_timeout;
    req.max_bytes_per_second = options.max_bytes_per_second;
    req.cancel = options.cancel;
    const std::uint64_t start_offset = offset;
    bool first_chunk = true;
    http::BodySink sink = [&](long status, const http::Headers& headers, const char* data, std::size_t n) {
      if (first_chunk) {
        first_chunk = false;
        if (status == 200 && offset > 0) {
          // The server ignored the Range (or the object changed): start over.
          if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) < 0) {
            write_errno = errno;
            return false;
          }
          offset = 0;
          hasher = util::Hasher(kind, meta.size);
        } else if (status == 206) {
          auto cr = headers.get("Content-Range");
          if (!cr || parse_content_range_start(*cr) != offset) return false;
        }
      }
      if (offset + n > meta.size) {
        overflow = true;
        return false;
      }
      const char* p = data;
      std::size_t left = n;
      while (left) {
        ssize_t w = ::write(fd.get(), p, left);
        if (w < 0) {
          if (errno == EINTR) continue;
          write_errno = errno;
          return false;
        }
        p += w;
        left -= static_cast<std::size_t>(w);
      }
      hasher.update(data, n);
      offset += n;
      report(false);
      return true;
    };

    http::Response r;
    try {
      r = client.perform(req, sink);
    } catch (const http::TransportError& e) {
      if (e.cancelled()) throw Error(ErrorCode::cancelled, "Download of '" + ctx.file + "' cancelled; a re-run resumes it.");
      if (write_errno) {
        remove_temp(temp);
        util::throw_errno(write_errno, "Cannot write " + temp.string());
      }
      if (overflow) {
        remove_temp(temp);
        throw Error(ErrorCode::integrity, "The server sent more than the expected " + std::to_string(meta.size) +
                                              " bytes for '" + ctx.file + "'; nothing was stored.");
      }
      if (offset > start_offset) failures = 0;
      if (!e.retryable() && !e.aborted_by_sink()) {
        throw Error(ErrorCode::network, "Download of '" + ctx.file + "' failed: " + e.what());
      }
      if (++failures > settings.max_retries)
        throw Error(ErrorCode::network, "Download of '" + ctx.file + "' from " + http::origin_of(url) + " failed after " +
                                            std::to_string(settings.max_retries) + " retries: " + e.what() +
                                            ". The partial file is kept: a re-run resumes it.");
      hub::backoff(failures - 1, nullptr, options.cancel);
      continue;
    }
    if (r.status >= 300 && r.status < 400) {
      auto location = r.headers.get("Location");
      if (!location || ++hops > 10)
        throw Error(ErrorCode::network, "Too many or broken redirects while downloading '" + ctx.file + "' from " +
                                            http::origin_of(url) + ".");
      url = http::resolve_location(url, *location);
      continue;
    }
    if (r.status == 416) {
      if (offset == meta.size) break;
      offset = 0;  // our partial does not fit the object: start over
      if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) < 0)
        util::throw_errno(errno, "Cannot write " + temp.string());
      hasher = util::Hasher(kind, meta.size);
      if (++failures > settings.max_retries) break;
      continue;
    }
    if (r.status >= 200 && r.status < 300) {
      if (offset == meta.size) break;
      // A body shorter than announced: a broken stream; continue from where it stopped.
      if (offset > start_offset) failures = 0;
      if (++failures > settings.max_retries) break;
      hub::backoff(failures - 1, nullptr, options.cancel);
      continue;
    }
    if (hub::retryable_status(r.status) && ++failures <= settings.max_retries) {
      hub::backoff(failures - 1, &r, options.cancel);
      continue;
    }
    remove_temp(temp);
    hub::throw_error_from_response(r, ctx);
  }

  if (offset != meta.size) {
    remove_temp(temp);
    throw Error(ErrorCode::integrity, "Consistency check failed for '" + ctx.file + "': it should be " +
                                          std::to_string(meta.size) + " bytes but " + std::to_string(offset) +
                                          " arrived. Nothing was stored; retry the download.");
  }
  if (verify) {
    auto digest = hasher.hex_digest();
    if (digest != meta.etag) {
      remove_temp(temp);
      if (resumed) {
        // The adopted prefix was bad (say, lost in a power cut): once more, from zero.
        fd.close();
        return download_verified(client, ctx, meta, dest, options, false);
      }
      throw Error(ErrorCode::integrity,
                  "Integrity check failed for '" + ctx.file + "' of " + std::string(to_string(ctx.type)) + " '" +
                      ctx.repo_id + "': expected " + (kind == util::HashKind::sha256 ? "sha256 " : "git blob sha1 ") +
                      meta.etag + ", got " + digest + ". Nothing was stored; retry the download.");
    }
  }
  if (::fsync(fd.get()) != 0 && errno != EINVAL) {
    int err = errno;
    remove_temp(temp);
    util::throw_errno(err, "Cannot write " + temp.string());
  }
  ::fchmod(fd.get(), file_mode());
  fd.close();
  if (::rename(temp.c_str(), dest.c_str()) != 0) {
    int err = errno;
    remove_temp(temp);
    util::throw_errno(err, "Cannot move the download into " + dest.string());
  }
  ::unlink(sidecar_of(temp).c_str());
  util::fsync_dir(dest.parent_path());
  report(true);
}

// Blob bookkeeping shared by fetch_online and the snapshot downloader.
fs::path ensure_blob(http::Client& client, const hub::Context& ctx, const store::RepoCache& cache,
                     const hub::FileMetadata& meta, const fs::path& pointer, const Options& options) {
  util::make_dirs(cache.blobs_dir());
  util::make_dirs(pointer.parent_path());
  store::write_cachedir_tag(cache.root());
  const fs::path blob = cache.blob_path(meta.etag);
  // Best effort: correctness comes from unique temp files and the rename, not the lock.
  store::FileLock lock(cache.lock_path(meta.etag), options.cancel);
  bool new_blob = false;
  if (options.force_download || !util::is_regular_file(blob)) {
    download_verified(client, ctx, meta, blob, options);
    new_blob = true;
  }
  if (options.force_download || !util::is_regular_file(pointer) || new_blob)
    cache.link_pointer(blob, pointer, new_blob);
  return pointer;
}

http::Client& thread_client() {
  thread_local http::Client client;
  return client;
}

}  // namespace

void download_to_path(const hub::Context& ctx, const hub::FileMetadata& meta, const fs::path& dest,
                      const Options& options) {
  util::make_dirs(dest.parent_path());
  download_verified(thread_client(), ctx, meta, dest, options);
}

fs::path download_file(const store::RepoCache& cache, std::string_view file, const std::string& commit,
                       const hub::FileMetadata& meta, const Options& options) {
  Options pinned = options;
  pinned.revision = commit;
  hub::Context ctx = hub::make_context(cache.repo_id(), file, pinned);
  auto pointer = cache.pointer_path(commit, file);
  if (!options.force_download && util::is_regular_file(pointer)) return pointer;
  return ensure_blob(thread_client(), ctx, cache, meta, pointer, options);
}

fs::path fetch_online(const store::RepoCache& cache, std::string_view file, const Options& options) {
  const std::string& rev = options.revision;
  // Revalidation choice: a ref confirmed less than max_age seconds ago is trusted.
  if (!options.force_download && options.max_age_seconds && !layout::is_commit_hash(rev)) {
    if (auto age = cache.ref_age(rev); age && age->count() <= *options.max_age_seconds) {
      auto found = cache.lookup(file, rev);
      if (found.status == CacheLookup::Status::cached) return found.path;
    }
  }

  hub::Context ctx = hub::make_context(cache.repo_id(), file, options);
  http::Client& client = thread_client();
  // Like Python: when a copy is cached for this revision, ask once and fall back to
  // it on failure; otherwise retry transient failures before giving up.
  const auto cached = cache.lookup(file, rev);
  const bool have_copy = cached.status == CacheLookup::Status::cached && !options.force_download;
  hub::FileMetadata meta;
  try {
    meta = hub::get_file_metadata(client, ctx, have_copy ? 0 : Settings::get().max_retries);
  } catch (const hub::EntryNotFoundError& e) {
    if (!e.commit().empty() && layout::is_commit_hash(e.commit())) {
      try {
        if (!layout::is_commit_hash(rev)) cache.write_ref(rev, e.commit());
      } catch (const Error&) {
      }
      cache.write_no_exist(e.commit(), file);
    }
    throw;
  } catch (const Error& e) {
    const bool definitive = e.code() == ErrorCode::revision_not_found || e.code() == ErrorCode::repo_not_found ||
                            e.code() == ErrorCode::gated || e.code() == ErrorCode::cancelled ||
                            e.code() == ErrorCode::integrity;
    if (!definitive && have_copy) return cached.path;  // the Hub is unreachable: serve the cached copy
    if (e.code() == ErrorCode::network && !options.force_download)
      throw Error(ErrorCode::network, std::string(e.what()) + " '" + std::string(file) +
                                          "' is not in the cache for revision '" + rev + "' either.");
    throw;
  }

  auto pointer = cache.pointer_path(meta.commit, file);
  if (!layout::is_commit_hash(rev) || rev != meta.commit) {
    try {
      if (!layout::is_commit_hash(rev)) cache.write_ref(rev, meta.commit);
    } catch (const Error& e) {
      // A read-only cache still serves files it has (huggingface_hub #1216).
      if (!util::is_regular_file(pointer) || options.force_download) throw;
    }
  }
  if (!options.force_download && util::is_regular_file(pointer)) return pointer;
  return ensure_blob(client, ctx, cache, meta, pointer, options);
}

fs::path download_flat(const fs::path& root, std::string_view repo, std::string_view file, const Options& options) {
  const fs::path dest = root / std::string(repo) / std::string(file);
  hub::Context ctx = hub::make_context(repo, file, options);
  http::Client& client = thread_client();
  hub::FileMetadata meta = hub::get_file_metadata(client, ctx, Settings::get().max_retries);
  util::make_dirs(dest.parent_path());
  store::FileLock lock(root / ".locks" / layout::repo_folder_name(repo, options.repo_type) / (meta.etag + ".lock"),
                       options.cancel);
  if (!options.force_download && util::is_regular_file(dest)) return dest;
  download_verified(client, ctx, meta, dest, options);
  return dest;
}

}  // namespace hubcache::transfer
