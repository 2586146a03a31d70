#include "transfer/local_metadata.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "util/fs.hpp"

namespace hubcache::transfer {

namespace fs = std::filesystem;

fs::path local_metadata_path(const fs::path& local_dir, const std::string& file) {
  return local_dir / ".cache/huggingface/download" / (file + ".metadata");
}

std::optional<LocalMetadata> parse_local_metadata(std::string_view text) {
  // As Python reads it: three readline().strip() values and float() of the third; anything
  // else (a missing line, a timestamp with trailing bytes, inf or nan) means corrupt.
  auto next_line = [&text] {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    auto b = line.find_first_not_of(" \t\r\v\f");
    if (b == std::string_view::npos) return std::string();
    return std::string(line.substr(b, line.find_last_not_of(" \t\r\v\f") - b + 1));
  };
  LocalMetadata m;
  m.commit = next_line();
  m.etag = next_line();
  const std::string ts = next_line();
  if (ts.empty()) return std::nullopt;
  char* end = nullptr;
  m.timestamp = std::strtod(ts.c_str(), &end);
  if (end != ts.c_str() + ts.size() || !std::isfinite(m.timestamp)) return std::nullopt;
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
