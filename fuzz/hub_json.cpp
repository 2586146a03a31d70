// Hub API JSON (src/hub/repo_api): a revision answer and a page of the tree listing. Only
// hubcache::Error may come out; a file that is listed has a safe path and a usable blob name;
// and what the listing gives survives the trees/<commit>.json cache unchanged (written by
// store::format_tree_cache, read back by store::parse_tree_cache).
#include <filesystem>
#include <map>
#include <string>

#include "fuzz_support.hpp"
#include "hub/repo_api.hpp"
#include "layout/naming.hpp"
#include "store/tree_cache.hpp"

using namespace hubcache;
using fuzz::printable;

namespace {

bool usable_etag(const std::string& etag) { return layout::is_hex(etag) && (etag.size() == 40 || etag.size() == 64); }

void check_tree_cache_round_trip(const std::vector<hub::TreeFile>& files, const std::string& input) {
  std::map<std::string, const hub::TreeFile*> want;  // the cache keeps one entry per path: the last
  for (const auto& f : files) want[f.path] = &f;
  const std::string text = store::format_tree_cache(files);
  auto back = store::parse_tree_cache(text);
  FUZZ_CHECK(back, "the tree cache refuses its own output for " + printable(input));
  FUZZ_CHECK(back->size() == want.size(), printable(input));
  for (const auto& g : *back) {
    auto it = want.find(g.path);
    FUZZ_CHECK(it != want.end(), "new path " + printable(g.path));
    const hub::TreeFile& f = *it->second;
    FUZZ_CHECK(g.size == f.size && g.blob_id == f.blob_id && g.lfs_sha256 == f.lfs_sha256 && g.etag() == f.etag() &&
                   (f.lfs_sha256.empty() || g.lfs_size == f.lfs_size),
               "entry " + printable(g.path) + " changed through " + printable(text));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  std::optional<std::string> commit;
  FUZZ_CHECK(fuzz::only_hubcache_errors("parse_revision_commit", [&] { commit = hub::parse_revision_commit(input); }),
             printable(input));
  if (commit) FUZZ_CHECK(layout::is_commit_hash(*commit), printable(*commit));

  std::vector<hub::TreeFile> files;
  try {
    files = hub::parse_tree_page(input);
  } catch (const Error& e) {
    FUZZ_CHECK(e.code() == ErrorCode::http || e.code() == ErrorCode::integrity, e.what());
    return 0;
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string("parse_tree_page threw a non-hubcache exception: ") + e.what());
  }
  const std::filesystem::path snapshot = "/c/models--o--n/snapshots/c";
  for (const auto& f : files) {
    FUZZ_CHECK(fuzz::only_hubcache_errors("validate_filename", [&] { layout::validate_filename(f.path); }),
               "unsafe path listed: " + printable(f.path));
    auto rel = (snapshot / f.path).lexically_normal().lexically_relative(snapshot);
    FUZZ_CHECK(!rel.empty() && *rel.begin() != "..", printable(f.path));
    FUZZ_CHECK(usable_etag(f.etag()), "blob name " + printable(f.etag()) + " for " + printable(f.path));
    if (!f.lfs_sha256.empty()) FUZZ_CHECK(f.size == f.lfs_size, printable(f.path));
  }
  check_tree_cache_round_trip(files, input);
  return 0;
}
