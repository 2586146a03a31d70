#include "transfer/local_metadata.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "util/fs.hpp"

namespace hubcache::transfer {

namespace fs = std::filesystem;

fs::path local_metadata_path(const fs::path& local_dir, const std::string& file) {
  return local_dir / ".cache/huggingface/download" / (file + ".metadata");
}

std::optional<LocalMetadata> parse_local_metadata(std::string_view view) {
  const std::string text(view);
  LocalMetadata m;
  auto a = text.find('\n');
  auto b = a == std::string::npos ? a : text.find('\n', a + 1);
  if (b == std::string::npos) return std::nullopt;
  m.commit = text.substr(0, a);
  m.etag = text.substr(a + 1, b - a - 1);
  char* end = nullptr;
  m.timestamp = std::strtod(text.c_str() + b + 1, &end);
  if (end == text.c_str() + b + 1) return std::nullopt;
  return m;
}

std::string format_local_metadata(const LocalMetadata& m) {
  char ts[64];
  std::snprintf(ts, sizeof ts, "%.6f", m.timestamp);
  return m.commit + "\n" + m.etag + "\n" + ts + "\n";
}

std::optional<LocalMetadata> read_local_metadata(const fs::path& local_dir, const std::string& file) {
  auto text = util::read_small_file(local_metadata_path(local_dir, file));
  if (!text) return std::nullopt;
  return parse_local_metadata(*text);
}

void write_local_metadata(const fs::path& local_dir, const std::string& file, const std::string& commit,
                          const std::string& etag) {
  LocalMetadata m{commit, etag,
                  std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()};
  auto p = local_metadata_path(local_dir, file);
  util::make_dirs(p.parent_path());
  util::atomic_write(p, format_local_metadata(m));
}

}  // namespace hubcache::transfer
