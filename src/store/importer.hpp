// hubcache import: a plain folder of files becomes one commit of a repo in the
// cache, exactly as a download would have written it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "hubcache/options.hpp"

namespace hubcache::store {

struct ImportOptions {
  std::filesystem::path source;
  std::string repo_id;
  RepoType type = RepoType::model;
  std::string revision = "main";
  std::optional<std::string> commit;  // 40 hex; default: derived from the contents
  // Files above this size are stored as LFS files (blob name = sha256), as are the
  // usual weight formats (*.onnx, *.safetensors, *.bin, *.gguf, ...).
  std::uint64_t lfs_threshold = 10'000'000;
};

struct ImportResult {
  std::string commit;
  std::size_t files = 0;
  std::uint64_t bytes = 0;
};

// Would huggingface_hub's default .gitattributes store this path in LFS?
bool is_lfs_path(const std::string& path);

// Copies every regular file under options.source into <root>/<repo folder>: blobs
// named by sha256 (LFS) or git blob sha1, relative symlinks in snapshots/<commit>/,
// refs/<revision>. Blobs are written temp + fsync + rename. Throws
// Error(invalid_argument) for names that escape the folder (including symlinks
// pointing outside it) before writing anything.
ImportResult import_folder(const std::filesystem::path& root, const ImportOptions& options);

}  // namespace hubcache::store
