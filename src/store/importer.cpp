#include "store/importer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "hubcache/error.hpp"
#include "layout/naming.hpp"
#include "store/repo_cache.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"

namespace hubcache::store {

bool is_lfs_path(const std::string& path) {
  static const char* kSuffixes[] = {".7z",     ".arrow", ".bin",  ".bz2",    ".ckpt",    ".ftz",  ".gz",   ".h5",
                                    ".joblib", ".lfs",   ".mlmodel", ".model", ".msgpack", ".npy", ".npz",  ".onnx",
                                    ".ot",     ".parquet", ".pb", ".pickle", ".pkl", ".pt",  ".pth",  ".rar",
                                    ".safetensors", ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst",
                                    ".gguf",   ".onnx_data"};
  for (const char* s : kSuffixes) {
    std::string_view suf(s);
    if (path.size() >= suf.size() && path.compare(path.size() - suf.size(), suf.size(), suf) == 0) return true;
  }
  return path.find("tfevents") != std::string::npos || path.find(".tar.") != std::string::npos ||
         path.rfind("saved_model/", 0) == 0 || path.find("/saved_model/") != std::string::npos;
}

namespace {

struct Entry {
  std::string path;  // inside the repo
  fs::path source;
  std::uint64_t size;
  bool lfs;
  std::string etag;
};

void copy_into_blob(const fs::path& from, const fs::path& blob) {
  if (!util::is_regular_file(blob)) util::copy_file_atomically(from, blob);
}

}  // namespace

ImportResult import_folder(const fs::path& root, const ImportOptions& options) {
  std::error_code ec;
  const fs::path source = fs::canonical(options.source, ec);
  if (ec || !fs::is_directory(source))
    throw Error(ErrorCode::invalid_argument, "Cannot import '" + options.source.string() + "': not a folder.");
  if (options.commit && !layout::is_commit_hash(*options.commit))
    throw Error(ErrorCode::invalid_argument, "--commit must be 40 lowercase hex characters.");
  layout::validate_revision(options.revision);
  RepoCache cache(root, options.repo_id, options.type);

  // 1. List and validate everything before writing anything.
  std::vector<Entry> entries;
  for (auto it = fs::recursive_directory_iterator(source, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (it->is_directory() && (name == ".git" || (name == ".cache" && it.depth() == 0))) {
      it.disable_recursion_pending();
      continue;
    }
    auto real = fs::canonical(it->path(), ec);
    if (ec) throw Error(ErrorCode::invalid_argument, "Cannot import '" + it->path().string() + "': " + ec.message());
    auto rel_real = real.lexically_relative(source);
    if (rel_real.empty() || *rel_real.begin() == "..")
      throw Error(ErrorCode::invalid_argument,
                  "Refusing to import '" + it->path().string() + "': it is a symlink pointing outside the folder.");
    if (!fs::is_regular_file(real)) continue;
    std::string rel = it->path().lexically_relative(source).generic_string();
    layout::validate_filename(rel);
    Entry e{rel, real, fs::file_size(real), false, ""};
    e.lfs = is_lfs_path(rel) || e.size > options.lfs_threshold;
    entries.push_back(std::move(e));
  }
  if (ec) throw Error(ErrorCode::io, "Cannot read '" + options.source.string() + "': " + ec.message());
  if (entries.empty()) throw Error(ErrorCode::invalid_argument, "Nothing to import: '" + options.source.string() + "' has no files.");
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });

  // 2. Hash; the commit id is derived from (path, blob) pairs so equal folders give equal commits.
  util::Hasher commit_hash(util::HashKind::sha256, 0);
  commit_hash.update("hubcache import v1\n");
  ImportResult result;
  for (auto& e : entries) {
    e.etag = util::hash_file(e.source, e.lfs ? util::HashKind::sha256 : util::HashKind::git_blob_sha1);
    commit_hash.update(e.path + '\0' + e.etag + '\n');
    result.bytes += e.size;
  }
  result.commit = options.commit.value_or(commit_hash.hex_digest().substr(0, 40));
  result.files = entries.size();

  // 3. Write in the download order: dirs, ref, blobs, pointers.
  util::make_dirs(cache.blobs_dir());
  write_cachedir_tag(root);
  if (!layout::is_commit_hash(options.revision) || options.revision != result.commit) {
    if (layout::is_commit_hash(options.revision))
      throw Error(ErrorCode::invalid_argument, "--revision is a commit hash different from the imported commit; use --commit.");
    cache.write_ref(options.revision, result.commit);
  }
  for (const auto& e : entries) {
    auto blob = cache.blob_path(e.etag);
    FileLock lock(cache.lock_path(e.etag));
    bool fresh = !util::is_regular_file(blob);
    copy_into_blob(e.source, blob);
    auto pointer = cache.pointer_path(result.commit, e.path);
    if (!util::is_regular_file(pointer)) cache.link_pointer(blob, pointer, fresh);
  }
  return result;
}

}  // namespace hubcache::store
