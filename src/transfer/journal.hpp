// The resume journal: the `<temp>.resume` sidecar next to a partial download.
//
// It names what the partial is (the Hub's etag and size, the URL it came from,
// the CDN's own strong ETag for If-Range) and which byte ranges are on disk.
// The engine rewrites it atomically (write `<sidecar>.tmp`, rename) a few times a
// second while bytes arrive, always after the bytes it lists were written, so
// after a crash or kill -9 it never claims more than the file holds. It is not
// fsynced: after a power cut it may claim bytes that never reached the disk, and
// the final hash check then discards the partial (see download.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "transfer/intervals.hpp"

namespace hubcache::transfer {

struct Journal {
  std::string etag;        // the Hub's etag (the blob name)
  std::uint64_t size = 0;  // expected content size
  std::string url;         // where the bytes came from (informative)
  std::string validator;   // strong ETag of the object on the CDN, "" when none
  IntervalSet done;        // byte ranges on disk
};

// JSON of the sidecar: {"version":2,"etag","size","url","validator","done":[[first,end],...]}.
// Never throws for the strings' bytes: what is not UTF-8 becomes U+FFFD.
std::string journal_to_json(const Journal& journal);

// Parses a sidecar of a partial whose file is `file_size` bytes. A version 1
// sidecar (etag, size and url only, written by hubcache 0.1) means [0, file_size)
// is done. Ranges are clipped to both sizes. nullopt when the text is not a
// usable journal. Never throws.
std::optional<Journal> parse_journal(std::string_view text, std::uint64_t file_size);

// The path of the sidecar of a temp file, and of the sidecar's own temp file.
std::filesystem::path sidecar_of(const std::filesystem::path& temp);
std::filesystem::path sidecar_temp_of(const std::filesystem::path& temp);

// Writes the journal of `temp` atomically. Best effort: false when it could not
// be written (the download goes on; a re-run then resumes less or nothing).
bool write_journal(const std::filesystem::path& temp, const Journal& journal);

}  // namespace hubcache::transfer
