#include "transfer/journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

namespace hubcache::transfer {

namespace fs = std::filesystem;

namespace {
// A journal is rewritten often; a pathological one (a fragmented partial) must
// still stay small. Beyond this many ranges the journal is not trusted.
constexpr std::size_t kMaxRanges = 1u << 16;
}  // namespace

std::string journal_to_json(const Journal& journal) {
  nlohmann::json done = nlohmann::json::array();
  for (const auto& [a, b] : journal.done.ranges()) done.push_back({a, b});
  // Header bytes that are not UTF-8 become U+FFFD, not a type_error past download.cpp's clean-up.
  return nlohmann::json{{"version", 2},       {"etag", journal.etag},           {"size", journal.size},
                        {"url", journal.url}, {"validator", journal.validator}, {"done", done}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<Journal> parse_journal(std::string_view text, std::uint64_t file_size) {
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto str = [&](const char* key) -> std::optional<std::string> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  Journal out;
  auto etag = str("etag");
  auto size = j.find("size");
  if (!etag || etag->empty() || size == j.end() || !size->is_number_unsigned()) return std::nullopt;
  out.etag = *etag;
  out.size = size->get<std::uint64_t>();
  out.url = str("url").value_or("");
  out.validator = str("validator").value_or("");
  const std::uint64_t limit = std::min(out.size, file_size);
  auto done = j.find("done");
  if (done == j.end()) {
    // Version 1: the file was written sequentially, so its size is its progress.
    if (file_size > out.size) return std::nullopt;
    out.done.add(0, file_size);
    return out;
  }
  if (!done->is_array() || done->size() > kMaxRanges) return std::nullopt;
  for (const auto& r : *done) {
    if (!r.is_array() || r.size() != 2 || !r[0].is_number_unsigned() || !r[1].is_number_unsigned()) return std::nullopt;
    const auto a = r[0].get<std::uint64_t>(), b = r[1].get<std::uint64_t>();
    if (a >= b) return std::nullopt;
    out.done.add(a, std::min(b, limit));
  }
  return out;
}

fs::path sidecar_of(const fs::path& temp) {
  auto p = temp;
  p += ".resume";
  return p;
}

fs::path sidecar_temp_of(const fs::path& temp) {
  auto p = temp;
  p += ".resume.tmp";
  return p;
}

bool write_journal(const fs::path& temp, const Journal& journal) {
  const std::string text = journal_to_json(journal);
  // One writer per temp file (the claim-by-rename scheme), so a fixed name for
  // the sidecar's temp file is safe, and a crash leaves at most this one behind.
  const fs::path tmp = sidecar_temp_of(temp);
  // Removed and created anew (O_EXCL, O_NOFOLLOW): never written through a symlink
  // planted under that name.
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return false;
  const char* p = text.data();
  std::size_t left = text.size();
  bool ok = true;
  while (left) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ok = ::close(fd) == 0 && ok;
  if (ok && ::rename(tmp.c_str(), sidecar_of(temp).c_str()) == 0) return true;
  ::unlink(tmp.c_str());
  return false;
}

}  // namespace hubcache::transfer
