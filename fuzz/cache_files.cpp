// Small files the cache reads back: refs/<revision>, trees/<commit>.json (both readers: the
// snapshot download's store::parse_tree_cache and verify's admin::read_tree_cache), local-dir
// .cache/huggingface/download/<file>.metadata and the <partial>.resume journal of a download.
// The raw input goes through every reader (none may throw anything but hubcache::Error, and
// what they accept must be usable); then a record built from the same bytes goes through each
// writer and back (round trip).
#include <fuzzer/FuzzedDataProvider.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_support.hpp"
#include "hubcache/admin.hpp"
#include "layout/naming.hpp"
#include "store/repo_cache.hpp"
#include "store/tree_cache.hpp"
#include "transfer/journal.hpp"
#include "transfer/local_metadata.hpp"

using namespace hubcache;
using fuzz::printable;

namespace {

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (std::size_t k = 1; k < n; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n;
  }
  return true;
}

std::string trimmed(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

void check_ref(const std::string& text) {
  std::optional<std::string> commit;
  FUZZ_CHECK(fuzz::only_hubcache_errors("parse_ref", [&] { commit = store::parse_ref(text); }), printable(text));
  if (commit) FUZZ_CHECK(layout::is_commit_hash(*commit) && *commit == trimmed(text), printable(text));
  if (layout::is_commit_hash(trimmed(text))) FUZZ_CHECK(commit, "refused ref " + printable(text));
}

std::optional<std::vector<hub::TreeFile>> check_tree_cache(const std::string& text) {
  std::optional<std::vector<hub::TreeFile>> files;
  FUZZ_CHECK(fuzz::only_hubcache_errors("parse_tree_cache", [&] { files = store::parse_tree_cache(text); }),
             printable(text));
  if (!files) return files;
  const std::filesystem::path snapshot = "/c/models--o--n/snapshots/c", blobs = "/c/models--o--n/blobs";
  for (const auto& f : *files) {
    FUZZ_CHECK(fuzz::only_hubcache_errors("validate_filename", [&] { layout::validate_filename(f.path); }),
               "unsafe path from the tree cache: " + printable(f.path));
    // The blob name becomes blobs/<etag>: it must be a content hash, nothing that escapes.
    FUZZ_CHECK(layout::is_hex(f.etag()) && (f.etag().size() == 40 || f.etag().size() == 64),
               "blob name " + printable(f.etag()) + " from the tree cache " + printable(text));
  }
  auto again = store::parse_tree_cache(store::format_tree_cache(*files));
  FUZZ_CHECK(again && again->size() == files->size(), "tree cache round trip of " + printable(text));
  return files;
}

// admin::read_tree_cache reads the file itself: give it one, in a folder made once per process
// (and removed when libFuzzer exits normally). In /dev/shm when there is one: rewriting a file
// thousands of times a second on a disk filesystem (ext4 flushes truncated files on close) would
// make the target I/O-bound.
struct ScratchRepo {
  std::filesystem::path dir;
  ScratchRepo() {
    std::error_code ec;
    const auto base = std::filesystem::is_directory("/dev/shm", ec) ? std::filesystem::path("/dev/shm")
                                                                    : std::filesystem::temp_directory_path();
    std::string tmpl = (base / "hubcache-fuzz-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) std::abort();
    dir = tmpl;
    std::filesystem::create_directories(dir / "trees");
  }
  ~ScratchRepo() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

void check_admin_tree_cache(const std::string& text, const std::optional<std::vector<hub::TreeFile>>& store_view) {
  static const ScratchRepo scratch;
  const std::filesystem::path& repo = scratch.dir;
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  {
    std::ofstream out(repo / "trees" / (commit + ".json"), std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::optional<admin::TreeListing> listing;
  FUZZ_CHECK(
      fuzz::only_hubcache_errors("admin::read_tree_cache", [&] { listing = admin::read_tree_cache(repo, commit); }),
      printable(text));
  // Where the snapshot reader takes a file whose entries all have a blob_id, verify reads the same.
  if (!store_view || !listing) return;
  FUZZ_CHECK(listing->size() == store_view->size(), printable(text));
  for (const auto& f : *store_view) {
    auto it = listing->find(f.path);
    FUZZ_CHECK(it != listing->end() && it->second.lfs_sha256 == f.lfs_sha256 && it->second.blob_id == f.blob_id,
               "the two tree cache readers disagree on " + printable(f.path) + " in " + printable(text));
  }
}

void check_local_metadata(const std::string& text) {
  std::optional<transfer::LocalMetadata> m;
  FUZZ_CHECK(fuzz::only_hubcache_errors("parse_local_metadata", [&] { m = transfer::parse_local_metadata(text); }),
             printable(text));
  if (!m) return;
  FUZZ_CHECK(m->commit.find('\n') == std::string::npos && m->etag.find('\n') == std::string::npos, printable(text));
  FUZZ_CHECK(std::isfinite(m->timestamp), "timestamp " + std::to_string(m->timestamp) + " from " + printable(text));
}

bool same_journal(const transfer::Journal& a, const transfer::Journal& b) {
  return a.etag == b.etag && a.size == b.size && a.url == b.url && a.validator == b.validator &&
         a.done.ranges() == b.done.ranges();
}

// The journal of a partial that is `file_size` bytes long.
void check_journal(const std::string& text, std::uint64_t file_size) {
  std::optional<transfer::Journal> j;
  FUZZ_CHECK(fuzz::only_hubcache_errors("parse_journal", [&] { j = transfer::parse_journal(text, file_size); }),
             printable(text));
  if (!j) return;
  // What the engine trusts: a blob name, and done ranges inside both the file and the object.
  FUZZ_CHECK(!j->etag.empty(), printable(text));
  const std::uint64_t limit = std::min(j->size, file_size);
  for (const auto& [a, b] : j->done.ranges())
    FUZZ_CHECK(a < b && b <= limit, "range [" + std::to_string(a) + ", " + std::to_string(b) + ") of a " +
                                        std::to_string(file_size) + "-byte partial from " + printable(text));
  FUZZ_CHECK(j->done.total() <= limit, printable(text));
  // Rewritten (the engine does so a few times a second), it reads back the same.
  std::string again;
  FUZZ_CHECK(fuzz::only_hubcache_errors("journal_to_json", [&] { again = transfer::journal_to_json(*j); }),
             printable(text));
  auto back = transfer::parse_journal(again, file_size);
  FUZZ_CHECK(back && same_journal(*back, *j), "journal round trip of " + printable(text));
}

void round_trips(FuzzedDataProvider& in) {
  // .metadata: commit and etag are single lines, the timestamp is a time.time() value.
  transfer::LocalMetadata m;
  m.commit = in.ConsumeRandomLengthString(64);
  m.etag = in.ConsumeRandomLengthString(80);
  m.timestamp = in.ConsumeFloatingPointInRange<double>(0, 1e11);
  const char* blanks = " \t\r\n\v\f";
  if (m.commit.find_first_of(blanks) == std::string::npos && m.etag.find_first_of(blanks) == std::string::npos) {
    auto back = transfer::parse_local_metadata(transfer::format_local_metadata(m));
    FUZZ_CHECK(back && back->commit == m.commit && back->etag == m.etag &&
                   std::fabs(back->timestamp - m.timestamp) <= 1e-6 + m.timestamp * 1e-15,
               "metadata round trip of " + printable(m.commit) + " " + printable(m.etag));
  }

  // .resume: whatever the etag, URL and validator bytes, writing never throws (the engine
  // writes it best effort, past no clean-up); valid UTF-8 comes back as it was.
  transfer::Journal j;
  j.etag = in.ConsumeRandomLengthString(80);
  j.size = in.ConsumeIntegral<std::uint64_t>();
  j.url = in.ConsumeRandomLengthString(200);
  j.validator = in.ConsumeRandomLengthString(80);
  for (int n = in.ConsumeIntegralInRange(0, 8); n > 0; --n) {  // ranges of the object's bytes
    const auto a = in.ConsumeIntegralInRange<std::uint64_t>(0, j.size);
    j.done.add(a, in.ConsumeIntegralInRange<std::uint64_t>(a, j.size));
  }
  std::string text;
  FUZZ_CHECK(fuzz::only_hubcache_errors("journal_to_json", [&] { text = transfer::journal_to_json(j); }),
             printable(j.etag) + " " + printable(j.url) + " " + printable(j.validator));
  auto back = transfer::parse_journal(text, j.size);
  FUZZ_CHECK(j.etag.empty() ? !back : back && back->size == j.size && back->done.ranges() == j.done.ranges(),
             printable(text));
  if (back && valid_utf8(j.etag) && valid_utf8(j.url) && valid_utf8(j.validator))
    FUZZ_CHECK(same_journal(*back, j), "journal round trip of " + printable(text));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  check_ref(text);
  check_admin_tree_cache(text, check_tree_cache(text));
  check_local_metadata(text);
  check_journal(text, text.size());
  check_journal(text, UINT64_MAX);
  FuzzedDataProvider in(data, size);
  round_trips(in);
  return 0;
}
