// Downloads into the cache: hf_hub_download's algorithm (reference §3.7) with
// verified content and resume across runs.
//
// Resume design. Each download writes into its own temp file
// `<dest>.<8hex>.incomplete`, sized up front (sparse), next to a journal
// `<temp>.resume` (transfer/journal.hpp) that records the etag, expected size,
// URL, the CDN's validator and the byte ranges already on disk. A later run that
// holds the etag's flock looks for a partial of the same etag and size, and
// *claims* it by renaming it to a fresh unique name: rename is atomic, so even
// where flock is a silent no-op (Lustre, GPFS, some NFS) only one process can win
// a given partial. The old owner, if it still runs, notices at its next journal
// write that the name is no longer its file and stops writing (engine.cpp). The
// claimant re-hashes the prefix it adopts (on the hashing thread, while the
// network fetches the missing ranges) and asks only for the ranges missing, with
// `If-Range: <the CDN's ETag>`: a server whose object changed answers 200 with
// the whole body and the file restarts from zero. The final size and hash check
// (sha256 or git blob sha1, named by the etag) is the last word: a bad resumed
// file is discarded and downloaded once more from zero.
#include "transfer/download.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "http/client.hpp"
#include "hub/hub_client.hpp"
#include "hubcache/error.hpp"
#include "hubcache/settings.hpp"
#include "layout/naming.hpp"
#include "transfer/engine.hpp"
#include "transfer/journal.hpp"
#include "transfer/prefix_hasher.hpp"
#include "transfer/watch.hpp"
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

struct Partial {
  fs::path path;
  Journal journal;
};

// Claims the resumable partial of `dest` (same etag and size, a regular file with
// its journal) with the most bytes on disk, by renaming it.
std::optional<Partial> claim_partial(const fs::path& dest, const std::string& etag, std::uint64_t size) {
  const std::string prefix = dest.filename().string() + ".";
  std::error_code ec;
  std::optional<Partial> best;
  for (auto it = fs::directory_iterator(dest.parent_path(), ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0 || name.size() < 11 || name.substr(name.size() - 11) != ".incomplete") continue;
    // Only real files: a symlink planted in blobs/ must never be written through.
    struct stat st {
    }, side_st{};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const auto have = static_cast<std::uint64_t>(st.st_size);
    if (have > size) continue;
    std::optional<Journal> journal;
    if (::lstat(sidecar_of(it->path()).c_str(), &side_st) == 0) {
      if (!S_ISREG(side_st.st_mode)) continue;
      auto side = util::read_small_file(sidecar_of(it->path()));
      if (!side) continue;
      journal = parse_journal(*side, have);
      if (!journal || journal->etag != etag || journal->size != size) continue;
    } else if (errno == ENOENT && have == size) {
      // Sized, but killed before its first journal write (the engine writes one only
      // once a download has run for a while): nothing in it is trusted, yet it is
      // reused instead of left behind.
      journal = Journal{};
      journal->etag = etag;
      journal->size = size;
    } else {
      continue;
    }
    if (!best || journal->done.total() > best->journal.done.total()) best = Partial{it->path(), std::move(*journal)};
  }
  if (!best) return std::nullopt;
  fs::path claimed = dest;
  claimed += "." + util::random_hex8() + ".incomplete";
  if (::rename(best->path.c_str(), claimed.c_str()) != 0) return std::nullopt;  // another process won it
  // The journal follows; it is rewritten under the new name right away anyway.
  ::rename(sidecar_of(best->path).c_str(), sidecar_of(claimed).c_str());
  ::unlink(sidecar_temp_of(best->path).c_str());
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
    if (fd_ >= 0 && ::close(fd_) != 0) {
      fd_ = -1;
      util::throw_errno(errno, "Cannot close a downloaded file");
    }
    fd_ = -1;
  }

 private:
  int fd_;
};

// The journal files of the temp file `temp`.
void forget_journal(const fs::path& temp) {
  ::unlink(sidecar_of(temp).c_str());
  ::unlink(sidecar_temp_of(temp).c_str());
}

// Our temp file lost its name. Renamed away by a claimant, its journal is the
// claimant's now; deleted by another tool (`hf cache prune`, a person), no file
// has that name any more and the journal left next to it describes nothing.
void forget_journal_if_deleted(int fd, const fs::path& temp) {
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_nlink == 0) forget_journal(temp);
}

void remove_temp(const fs::path& temp) {
  ::unlink(temp.c_str());
  forget_journal(temp);
}

// Opens a claimed partial for writing: never through a symlink (one swapped in
// since the claim looked), and only a regular file. -1 when it is not usable.
int open_claimed(const fs::path& temp) {
  int fd = ::open(temp.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -1;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Creates a new temp file: O_EXCL and O_NOFOLLOW, so a name planted in advance
// (a symlink, a file of someone else's) is never opened. When the folder vanished
// meanwhile (a concurrent `gc` or `rm` of the whole repo), it is made again.
int create_temp(const fs::path& temp) {
  for (int attempt = 0;; ++attempt) {
    int fd = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd >= 0 || errno != ENOENT || attempt >= store::kVanishedFolderRetries) return fd;
    util::make_dirs(temp.parent_path());
  }
}

// Downloads `meta.location` into `dest`: verified, then renamed into place.
void download_verified(http::Client& client, const hub::Context& ctx, const hub::FileMetadata& meta,
                       const fs::path& dest, const Options& options, bool allow_resume = true,
                       bool sync_dir = true) {
  util::HashKind kind{};
  const bool verify = util::hash_kind_for_etag(meta.etag, kind);

  Journal journal;
  fs::path temp;
  int raw_fd = -1;
  if (auto partial = allow_resume ? claim_partial(dest, meta.etag, meta.size) : std::nullopt) {
    raw_fd = open_claimed(partial->path);
    if (raw_fd >= 0) {
      temp = partial->path;
      journal = std::move(partial->journal);
    } else {
      remove_temp(partial->path);  // ours since the claim, and unusable
    }
  }
  if (raw_fd < 0) {
    temp = dest;
    temp += "." + util::random_hex8() + ".incomplete";
    raw_fd = create_temp(temp);
    if (raw_fd < 0) util::throw_errno(errno, "Cannot create " + temp.string());
  }
  journal.etag = meta.etag;
  journal.size = meta.size;
  journal.url = meta.location;
  const bool resumed = journal.done.total() > 0;

  Fd fd(raw_fd);
  // Sized up front (sparse): every range writes at its own offset.
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || (static_cast<std::uint64_t>(st.st_size) != meta.size &&
                                      ::ftruncate(fd.get(), static_cast<off_t>(meta.size)) != 0)) {
    int err = errno;
    remove_temp(temp);
    util::throw_errno(err, "Cannot create " + temp.string());
  }
  // No journal yet: the engine writes the first one once the download has run for a
  // while (a quick download writes none: five fewer file operations per small file).
  // Until then a killed run's sized temp file is still claimed by the next run.

  DownloadWatch* watch = current_download_watch();
  if (watch) watch->started(fd.get(), temp, meta.size);

  bool again = false;  // download once more from zero, without resuming
  std::string digest;
  {
    PrefixHasher hasher(fd.get(), verify ? std::optional(kind) : std::nullopt, meta.size);
    FetchJob job{ctx, meta, fd.get(), temp, journal, hasher, options, watch};
    try {
      fetch_missing(client.multi(), job);
      digest = hasher.finish(options.cancel);
    } catch (const LostClaim&) {
      again = true;  // the file is another process's now: leave it alone
    } catch (const Error& e) {
      // A network failure, a cancellation or a refused URL keeps the partial for a re-run.
      if (e.code() != ErrorCode::network && e.code() != ErrorCode::cancelled &&
          !dynamic_cast<const ResumableError*>(&e))
        remove_temp(temp);
      throw;
    }
  }
  if (again) {
    forget_journal_if_deleted(fd.get(), temp);
    fd.close();
    return download_verified(client, ctx, meta, dest, options, false, sync_dir);
  }
  if (verify && digest != meta.etag) {
    remove_temp(temp);
    if (resumed) {
      // The adopted ranges were bad (say, lost in a power cut): once more, from zero.
      fd.close();
      return download_verified(client, ctx, meta, dest, options, false, sync_dir);
    }
    throw Error(ErrorCode::integrity, "Integrity check failed for '" + ctx.file + "' of " +
                                          std::string(to_string(ctx.type)) + " '" + ctx.repo_id + "': expected " +
                                          (kind == util::HashKind::sha256 ? "sha256 " : "git blob sha1 ") + meta.etag +
                                          ", got " + digest + ". Nothing was stored; retry the download.");
  }
  // Most of the file is already written back (the hashing thread started it).
  if (::fsync(fd.get()) != 0 && errno != EINVAL) {
    int err = errno;
    remove_temp(temp);
    util::throw_errno(err, "Cannot write " + temp.string());
  }
  if (::fstat(fd.get(), &st) == 0 && (st.st_mode & 07777) != file_mode()) ::fchmod(fd.get(), file_mode());
  const bool owned = still_owned(fd.get(), temp);
  if (!owned) forget_journal_if_deleted(fd.get(), temp);
  fd.close();
  if (!owned) return download_verified(client, ctx, meta, dest, options, false, sync_dir);
  if (::rename(temp.c_str(), dest.c_str()) != 0) {
    int err = errno;
    remove_temp(temp);
    util::throw_errno(err, "Cannot move the download into " + dest.string());
  }
  forget_journal(temp);
  if (sync_dir) util::fsync_dir(dest.parent_path());
  if (options.progress) options.progress(ProgressEvent{ctx.repo_id, ctx.file, meta.size, meta.size, true});
}

// Blob bookkeeping shared by fetch_online and the snapshot downloader.
fs::path ensure_blob(http::Client& client, const hub::Context& ctx, const store::RepoCache& cache,
                     const hub::FileMetadata& meta, const fs::path& pointer, const Options& options,
                     const BatchHints& hints = {}, bool* downloaded = nullptr) {
  // Nothing is written below a planted symlink, not even the pointer's folders.
  cache.refuse_planted_symlinks(pointer.parent_path());
  store::write_cachedir_tag(cache.root());
  const fs::path blob = cache.blob_path(meta.etag);
  // Best effort: correctness comes from unique temp files and the rename, not the lock.
  // Folders are made only under the lock: `gc` and `rm` keep a repo whose locks are
  // held, so a whole-repo deletion cannot take them away from a download that has
  // just made them (and create_temp makes them again if one did, in the window
  // before it saw the lock).
  std::optional<store::FileLock> lock;
  if (!hints.lock_held) lock.emplace(cache.lock_path(meta.etag), options.cancel);
  util::make_dirs(cache.blobs_dir());
  bool new_blob = false;
  if (options.force_download || !util::is_regular_file(blob)) {
    download_verified(client, ctx, meta, blob, options, hints.look_for_partial, hints.sync_blobs_dir);
    new_blob = true;
  }
  if (downloaded) *downloaded = new_blob;
  if (options.force_download || !util::is_regular_file(pointer) || new_blob)
    cache.link_pointer(blob, pointer, new_blob);
  return pointer;
}

http::Client& thread_client() {
  thread_local http::Client client;
  return client;
}

}  // namespace

std::set<std::string> partials_in_blobs(const fs::path& blobs) {
  std::set<std::string> etags;
  std::error_code ec;
  for (auto it = fs::directory_iterator(blobs, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > 11 && name.compare(name.size() - 11, 11, ".incomplete") == 0)
      etags.insert(name.substr(0, name.find('.')));
  }
  return etags;
}

void download_to_path(const hub::Context& ctx, const hub::FileMetadata& meta, const fs::path& dest,
                      const Options& options) {
  util::make_dirs(dest.parent_path());
  download_verified(thread_client(), ctx, meta, dest, options);
}

fs::path download_file(const store::RepoCache& cache, std::string_view file, const std::string& commit,
                       const hub::FileMetadata& meta, const Options& options, const BatchHints& hints,
                       bool* downloaded) {
  if (downloaded) *downloaded = false;
  Options pinned = options;
  pinned.revision = commit;
  hub::Context ctx = hub::make_context(cache.repo_id(), file, pinned);
  auto pointer = cache.pointer_path(commit, file);
  if (!options.force_download && util::is_regular_file(pointer)) return pointer;
  return ensure_blob(thread_client(), ctx, cache, meta, pointer, options, hints, downloaded);
}

fs::path fetch_online(const store::RepoCache& cache, std::string_view file, const Options& options) {
  const std::string& rev = options.revision;
  // Revalidation choice: a ref confirmed less than max_age seconds ago is trusted.
  if (!options.force_download && options.max_age_seconds && !layout::is_commit_hash(rev)) {
    if (auto age = cache.ref_age(rev); age && age->count() <= *options.max_age_seconds) {
      auto found = cache.lookup(file, rev);
      if (found.status == CacheLookup::Status::cached) return found.path;
      // A .no_exist marker of that commit answers as surely as a cached file does.
      if (found.status == CacheLookup::Status::missing_upstream)
        throw Error(ErrorCode::entry_not_found,
                    "'" + std::string(file) + "' does not exist in " + std::string(to_string(options.repo_type)) +
                        " '" + cache.repo_id() + "' at revision '" + rev + "' (commit " + found.commit +
                        ", as the cache's .no_exist records; refs/" + rev + " was confirmed within --max-age).");
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
    // The Hub cannot be reached (connection, DNS, timeout) and the cache lacks the file:
    // "not cached" (exit 3), as for a whole repo and as huggingface_hub's
    // LocalEntryNotFoundError. A TLS failure, and a transfer that fails once under way,
    // stay network errors (exit 9).
    if (auto* unreachable = dynamic_cast<const hub::UnreachableError*>(&e); unreachable && !options.force_download)
      throw Error(unreachable->transient() ? ErrorCode::not_cached : ErrorCode::network,
                  unreachable_message(*unreachable,
                                      "'" + std::string(file) + "' of " + std::string(to_string(options.repo_type)) +
                                          " '" + cache.repo_id() + "' at revision '" + rev + "'",
                                      cache.root(), download_command(cache.repo_id(), file, options)));
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
