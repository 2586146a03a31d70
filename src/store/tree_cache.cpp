#include "store/tree_cache.hpp"

#include <map>
#include <nlohmann/json.hpp>

#include "layout/naming.hpp"
#include "util/fs.hpp"

namespace hubcache::store {

namespace {
fs::path tree_path(const RepoCache& cache, const std::string& commit) {
  return cache.repo_dir() / "trees" / (commit + ".json");
}
}  // namespace

std::optional<std::vector<hub::TreeFile>> read_tree_file(const fs::path& file) {
  auto text = util::read_small_file(file);
  if (!text) return std::nullopt;
  return parse_tree_cache(*text);
}

std::optional<std::vector<hub::TreeFile>> parse_tree_cache(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto version = j.find("format_version");
  if (version == j.end() || !version->is_number_integer() || *version != 1 || !j.contains("files") ||
      !j["files"].is_object())
    return std::nullopt;  // unknown format: ignored, as Python does
  // Typed look-ups: json::value() throws type_error when a field has another type, and a
  // corrupt file must only mean "fetch the listing again".
  auto text_field = [](const nlohmann::json& e, const char* key, std::string& out) {
    auto it = e.find(key);
    if (it == e.end()) return true;
    if (!it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  auto size_field = [](const nlohmann::json& e, const char* key, std::uint64_t& out) {
    auto it = e.find(key);
    if (it == e.end()) return true;
    if (!it->is_number_unsigned()) return false;
    out = it->get<std::uint64_t>();
    return true;
  };
  std::vector<hub::TreeFile> out;
  for (const auto& [path, e] : j["files"].items()) {
    if (!e.is_object()) return std::nullopt;
    hub::TreeFile f;
    f.path = path;
    try {
      layout::validate_filename(f.path);
    } catch (const Error&) {
      return std::nullopt;
    }
    if (!size_field(e, "size", f.size) || !text_field(e, "blob_id", f.blob_id) ||
        !text_field(e, "lfs_sha256", f.lfs_sha256) || !size_field(e, "lfs_size", f.lfs_size) ||
        !text_field(e, "xet_hash", f.xet_hash))
      return std::nullopt;
    if (e.contains("xet_hash") && (f.xet_hash.size() != 64 || !layout::is_hex(f.xet_hash))) return std::nullopt;
    // The etag names blobs/<etag>: only a content hash may, never "../../x" from a planted file.
    if (!layout::is_hex(f.etag()) || (f.etag().size() != 40 && f.etag().size() != 64)) return std::nullopt;
    out.push_back(std::move(f));
  }
  return out;
}

std::string format_tree_cache(const std::vector<hub::TreeFile>& files) {
  std::map<std::string, const hub::TreeFile*> sorted;
  for (const auto& f : files) sorted[f.path] = &f;
  nlohmann::ordered_json entries = nlohmann::ordered_json::object();
  for (const auto& [path, f] : sorted) {
    // Python's key order inside an entry: size, blob_id[, lfs_sha256, lfs_size][, xet_hash].
    nlohmann::ordered_json e;
    e["size"] = f->size;
    e["blob_id"] = f->blob_id;
    if (!f->lfs_sha256.empty()) {
      e["lfs_sha256"] = f->lfs_sha256;
      e["lfs_size"] = f->lfs_size;
    }
    if (!f->xet_hash.empty()) e["xet_hash"] = f->xet_hash;
    entries[path] = std::move(e);
  }
  nlohmann::ordered_json doc;
  doc["format_version"] = 1;
  doc["files"] = std::move(entries);
  return doc.dump(1, ' ', true);
}

void write_tree_file(const fs::path& file, const std::vector<hub::TreeFile>& files) noexcept {
  try {
    auto text = format_tree_cache(files);
    util::make_dirs(file.parent_path());
    util::atomic_write(file, text);
  } catch (...) {
  }
}

std::optional<std::vector<hub::TreeFile>> read_tree_cache(const RepoCache& cache, const std::string& commit) {
  return read_tree_file(tree_path(cache, commit));
}

void write_tree_cache(const RepoCache& cache, const std::string& commit,
                      const std::vector<hub::TreeFile>& files) noexcept {
  const auto path = tree_path(cache, commit);
  try {
    cache.refuse_planted_symlinks(path.parent_path());  // never write through a planted trees/ link
  } catch (...) {
    return;
  }
  write_tree_file(path, files);
}

}  // namespace hubcache::store
