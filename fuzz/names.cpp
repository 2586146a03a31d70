// Repo-id, revision and file-name validation (src/layout/naming). What a name that passes
// must guarantee once it is joined into the cache: it stays inside its folder.
#include <fuzzer/FuzzedDataProvider.h>

#include <filesystem>
#include <regex>
#include <string>

#include "fuzz_support.hpp"
#include "layout/naming.hpp"

using namespace hubcache;
namespace fs = std::filesystem;
using fuzz::printable;

namespace {

const fs::path kSnapshot = "/cache/models--org--name/snapshots/0123456789abcdef0123456789abcdef01234567";
const fs::path kRefs = "/cache/models--org--name/refs";

// `joined` lies strictly inside `dir`, and joining normalised nothing away.
bool strictly_inside(const fs::path& dir, const fs::path& joined) {
  if (joined.lexically_normal() != joined) return false;
  auto rel = joined.lexically_relative(dir);
  return !rel.empty() && rel != "." && *rel.begin() != "..";
}

void check_filename(const std::string& name) {
  if (!fuzz::only_hubcache_errors("validate_filename", [&] { layout::validate_filename(name); })) return;
  FUZZ_CHECK(name.find('\0') == std::string::npos && name.find('\\') == std::string::npos, printable(name));
  FUZZ_CHECK(name.front() != '/', printable(name));
  FUZZ_CHECK(!(name.size() >= 2 && std::isalpha(static_cast<unsigned char>(name[0])) && name[1] == ':'),
             "drive path accepted: " + printable(name));
  FUZZ_CHECK(strictly_inside(kSnapshot, kSnapshot / name), "escapes the snapshot: " + printable(name));
  FUZZ_CHECK(strictly_inside(kSnapshot, kSnapshot / (name + ".metadata")), printable(name));
  for (const auto& seg : fs::path(name))
    FUZZ_CHECK(!seg.empty() && seg != "." && seg != "..",
               "segment " + printable(seg.string()) + " in " + printable(name));
}

void check_revision(const std::string& rev) {
  if (!fuzz::only_hubcache_errors("validate_revision", [&] { layout::validate_revision(rev); })) return;
  FUZZ_CHECK(rev.find('\0') == std::string::npos && rev.find('\\') == std::string::npos, printable(rev));
  FUZZ_CHECK(strictly_inside(kRefs, kRefs / rev), "escapes refs/: " + printable(rev));
}

// Python's REPO_ID_REGEX plus validate_repo_id's extra rules (ASCII \w, as the Hub's ids).
bool python_accepts_repo_id(const std::string& id) {
  static const std::regex re(R"(^(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b$)");
  return std::regex_match(id, re) && id.find("--") == std::string::npos && id.find("..") == std::string::npos &&
         !(id.size() >= 4 && id.compare(id.size() - 4, 4, ".git") == 0);
}

void check_repo_id(const std::string& id) {
  bool ok = fuzz::only_hubcache_errors("validate_repo_id", [&] { layout::validate_repo_id(id); });
  // std::regex recurses per character: keep the oracle to ids of realistic length. The
  // org part has a 1000-character cap of our own (Python has none).
  if (id.size() <= 200) FUZZ_CHECK(ok == python_accepts_repo_id(id), (ok ? "accepted " : "refused ") + printable(id));
  if (!ok) return;
  for (auto type : {RepoType::model, RepoType::dataset, RepoType::space}) {
    auto folder = layout::repo_folder_name(id, type);
    FUZZ_CHECK(folder.find('/') == std::string::npos && folder != "." && folder != "..", printable(folder));
    auto back = layout::parse_repo_folder_name(folder);
    FUZZ_CHECK(back && back->first == type && back->second == id, "folder name round trip of " + printable(id));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string whole(reinterpret_cast<const char*>(data), size);
  check_filename(whole);
  check_revision(whole);
  check_repo_id(whole);

  // Names built from safe pieces must be accepted: the validators may not refuse what the
  // Hub serves (spaces, dots inside names, UTF-8, '@', '#', '%', ...).
  FuzzedDataProvider in(data, size);
  std::string name;
  const int segments = in.ConsumeIntegralInRange(1, 6);
  for (int i = 0; i < segments; ++i) {
    std::string seg = in.ConsumeRandomLengthString(40);
    std::string clean;
    for (char c : seg)
      if (c != '/' && c != '\\' && c != '\0') clean += c;
    if (clean.empty() || clean == "." || clean == "..") clean = "x" + clean;
    if (i == 0 && clean.size() >= 2 && std::isalpha(static_cast<unsigned char>(clean[0])) && clean[1] == ':')
      clean = "_" + clean;  // "C:..." is a drive path, refused on purpose
    name += (i ? "/" : "") + clean;
  }
  FUZZ_CHECK(fuzz::only_hubcache_errors("validate_filename", [&] { layout::validate_filename(name); }),
             "refused a plain name " + printable(name));
  return 0;
}
