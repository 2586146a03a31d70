// Pure naming rules of the hub cache and the Hub's URLs. No I/O here: one source
// of truth for folder names, validation, URL encoding and etag normalisation.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "hubcache/options.hpp"

namespace hubcache::layout {

// "models--org--name" (Python: repo_folder_name).
std::string repo_folder_name(std::string_view repo_id, RepoType type);
// Inverse of repo_folder_name; nullopt for names that are not repo folders.
std::optional<std::pair<RepoType, std::string>> parse_repo_folder_name(std::string_view folder);

// URL prefix of a repo type: "" for models, "datasets/", "spaces/".
std::string_view url_prefix(RepoType type);
// API collection of a repo type: "models", "datasets", "spaces".
std::string_view api_collection(RepoType type);

// Throws Error(invalid_argument) unless `repo_id` matches the Hub's rules:
// ^([\w\-.]+/)?[\w\-.]{1,96}$, no "--" or "..", not ending in ".git".
void validate_repo_id(std::string_view repo_id);
// Throws Error(invalid_argument) for an empty name, a segment "..", an absolute,
// drive-letter or UNC path, a backslash, a NUL, or an empty segment.
void validate_filename(std::string_view filename);
// Throws Error(invalid_argument) for revisions that cannot name a ref file safely.
void validate_revision(std::string_view revision);

// True for exactly 40 lowercase hex characters (Python's REGEX_COMMIT_HASH).
bool is_commit_hash(std::string_view revision);
bool is_hex(std::string_view text);

// Percent-encodes every byte except unreserved characters and those in `safe`
// (Python urllib.parse.quote semantics).
std::string quote(std::string_view text, std::string_view safe = "/");
// Decodes %XX escapes; invalid escapes are left as they are.
std::string unquote(std::string_view text);

// {endpoint}/{prefix}{repo}/resolve/{quote(rev, "")}/{quote(file)}
std::string resolve_url(std::string_view endpoint, RepoType type, std::string_view repo_id,
                        std::string_view revision, std::string_view filename);
// {endpoint}/api/{type}s/{repo}
std::string api_repo_url(std::string_view endpoint, RepoType type, std::string_view repo_id);

// Strips a leading W/ and surrounding quotes: W/"abc" -> abc.
std::string normalize_etag(std::string_view etag);

// The relative symlink target from `pointer` to `blob` (lexical, as Python's
// os.path.relpath(blob, dirname(pointer))).
std::filesystem::path relative_link_target(const std::filesystem::path& pointer,
                                           const std::filesystem::path& blob);

// hf://[models/|datasets/|spaces/]org/name[@revision][/path] (huggingface_hub's URI form).
struct HfUri {
  RepoType type = RepoType::model;
  std::string repo_id;
  std::optional<std::string> revision;
  std::string path;  // "" for the whole repo; may end with '/' for a folder
};
// nullopt when `text` does not start with "hf://"; throws Error(invalid_argument) when malformed.
std::optional<HfUri> parse_hf_uri(std::string_view text);

}  // namespace hubcache::layout
