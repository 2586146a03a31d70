// verify_revision: offline integrity check of one cached revision. Blob names
// are content hashes (sha256 for LFS, git blob sha1 otherwise), so a symlinked
// file verifies against its own name; real files need a tree listing.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "admin/revision.hpp"
#include "hubcache/admin.hpp"
#include "hubcache/error.hpp"
#include "layout/naming.hpp"
#include "store/repo_cache.hpp"
#include "util/fs.hpp"
#include "util/hash.hpp"

namespace hubcache::admin {

std::size_t VerifyReport::count(FileCheck::Status s) const {
  return static_cast<std::size_t>(
      std::count_if(files.begin(), files.end(), [s](const FileCheck& f) { return f.status == s; }));
}

std::optional<TreeListing> read_tree_cache(const fs::path& repo_dir, const std::string& commit) {
  if (!layout::is_commit_hash(commit)) return std::nullopt;
  auto text = util::read_small_file(repo_dir / "trees" / (commit + ".json"));
  if (!text) return std::nullopt;
  auto doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  // No json::value() here: it throws type_error for a format_version of another type.
  if (!doc.is_object() || !doc.contains("format_version") || !doc["format_version"].is_number_integer() ||
      doc["format_version"] != 1 || !doc.contains("files") || !doc["files"].is_object())
    return std::nullopt;
  TreeListing listing;
  for (const auto& [name, entry] : doc["files"].items()) {
    if (!entry.is_object() || !entry.contains("blob_id") || !entry["blob_id"].is_string()) return std::nullopt;
    TreeEntry e;
    e.blob_id = entry["blob_id"].get<std::string>();
    if (entry.contains("size") && entry["size"].is_number_unsigned()) e.size = entry["size"].get<std::uint64_t>();
    if (entry.contains("lfs_sha256") && entry["lfs_sha256"].is_string())
      e.lfs_sha256 = entry["lfs_sha256"].get<std::string>();
    listing.emplace(name, std::move(e));
  }
  return listing;
}

std::string choose_cached_commit(const store::RepoCache& repo, const std::string& revision) {
  const std::string label = std::string(to_string(repo.type())) + " '" + repo.repo_id() + "'";
  if (!revision.empty()) {
    layout::validate_revision(revision);
    auto commit = repo.resolve_commit(revision);
    if (!commit)
      throw Error(ErrorCode::not_cached,
                  "Revision '" + revision + "' of " + label + " is not in the cache (no refs/" + revision + ").");
    return *commit;
  }
  if (auto main = repo.read_ref("main")) return *main;
  std::vector<std::string> snaps;
  std::error_code ec;
  for (fs::directory_iterator it(repo.snapshots_dir(), ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->is_directory(ec)) snaps.push_back(it->path().filename().string());
  if (snaps.size() == 1) return snaps.front();
  if (snaps.empty()) throw Error(ErrorCode::not_cached, "No revision of " + label + " is in the cache.");
  std::sort(snaps.begin(), snaps.end());
  std::string list;
  for (const auto& s : snaps) list += " " + s;
  throw Error(ErrorCode::invalid_argument, label +
                                               " has no refs/main and several cached revisions; pick one with "
                                               "--revision:" +
                                               list);
}

namespace {

void check_against(FileCheck& c, const fs::path& file, util::HashKind kind, const std::string& expected) {
  c.expected = expected;
  try {
    c.actual = util::hash_file(file, kind);
  } catch (const Error& e) {
    c.status = FileCheck::Status::unreadable;
    c.detail = e.what();
    return;
  }
  c.status = c.actual == expected ? FileCheck::Status::ok : FileCheck::Status::mismatch;
}

}  // namespace

VerifyReport verify_revision(const fs::path& root, const std::string& repo_id, RepoType type,
                             const std::string& revision, const TreeListing* listing) {
  store::RepoCache repo(root, repo_id, type);
  VerifyReport report;
  report.repo_id = repo_id;
  report.type = type;
  std::error_code ec;
  if (!fs::is_directory(repo.repo_dir(), ec))
    throw Error(ErrorCode::not_cached,
                std::string(to_string(type)) + " '" + repo_id + "' is not in the cache at " + root.string() + ".");
  report.commit = choose_cached_commit(repo, revision);
  auto snap = repo.snapshot_dir(report.commit);
  if (!fs::is_directory(snap, ec))
    throw Error(ErrorCode::not_cached, "Revision " + report.commit + " of " + repo_id +
                                           " has no snapshot in the cache (refs point to a missing commit).");
  std::optional<TreeListing> cached_listing;
  if (!listing) {
    cached_listing = read_tree_cache(repo.repo_dir(), report.commit);
    if (cached_listing) listing = &*cached_listing;
  }
  report.has_listing = listing != nullptr;

  std::set<std::string> present;
  for (fs::recursive_directory_iterator it(snap, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) continue;
    std::string name = it->path().lexically_relative(snap).generic_string();
    present.insert(name);
    FileCheck c;
    c.name = name;
    util::HashKind kind;
    const bool link = it->is_symlink(ec);
    // The first hop of a link names the blob: <repo>/blobs/<etag>.
    const std::string etag = link ? fs::read_symlink(it->path(), ec).filename().string() : "";
    if (link && !fs::exists(it->path(), ec)) {
      c.status = FileCheck::Status::unreadable;
      c.detail = "blob missing (broken symlink to blobs/" + etag + ")";
    } else if (listing && listing->count(name)) {
      // The listing is the authority (Python's verify): it also catches a link to the wrong blob.
      const TreeEntry& e = listing->at(name);
      if (!e.lfs_sha256.empty())
        check_against(c, it->path(), util::HashKind::sha256, e.lfs_sha256);
      else
        check_against(c, it->path(), util::HashKind::git_blob_sha1, e.blob_id);
    } else if (link && util::hash_kind_for_etag(etag, kind)) {
      check_against(c, it->path(), kind, etag);
    } else if (link) {
      c.status = FileCheck::Status::unverifiable;
      c.detail = "blob name '" + etag + "' is not a content hash";
    } else {
      c.status = FileCheck::Status::unverifiable;
      c.detail = listing ? "not in the tree listing"
                         : "a real file (no-symlink mode) and no trees/" + report.commit + ".json to check it against";
    }
    report.files.push_back(std::move(c));
  }
  std::sort(report.files.begin(), report.files.end(),
            [](const FileCheck& a, const FileCheck& b) { return a.name < b.name; });
  if (listing) {
    for (const auto& [name, e] : *listing)
      if (!present.count(name)) report.missing.push_back(name);
    for (const auto& name : present)
      if (!listing->count(name)) report.extra.push_back(name);
  }
  return report;
}

}  // namespace hubcache::admin
