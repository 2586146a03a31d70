// local_dir download metadata: <local_dir>/.cache/huggingface/download/<file>.metadata
// (reference §5, "local_dir"), three lines each ending in '\n': commit, etag, and the Unix
// time it was written (a float), as huggingface_hub writes and reads them.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace hubcache::transfer {

struct LocalMetadata {
  std::string commit, etag;
  double timestamp = 0;
};

std::filesystem::path local_metadata_path(const std::filesystem::path& local_dir, const std::string& file);

// The three lines of a .metadata text, each stripped of blanks; nullopt when one is missing or
// the third is not a finite number and nothing else.
std::optional<LocalMetadata> parse_local_metadata(std::string_view text);
// The .metadata text for `m` (timestamp with microseconds, as Python's time.time()).
std::string format_local_metadata(const LocalMetadata& m);

std::optional<LocalMetadata> read_local_metadata(const std::filesystem::path& local_dir, const std::string& file);
// Writes the metadata of `file` stamped now (atomically; creates the folders).
void write_local_metadata(const std::filesystem::path& local_dir, const std::string& file, const std::string& commit,
                          const std::string& etag);

}  // namespace hubcache::transfer
