// hubcache/options.hpp: what a caller can choose for a lookup or a download.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

// Exported by libhubcache.so, which is built with hidden visibility (cmake/hubcache.map.in).
#pragma GCC visibility push(default)
namespace hubcache {

enum class RepoType { model, dataset, space };

// "model", "dataset" or "space".
std::string_view to_string(RepoType type);
// Accepts "model(s)", "dataset(s)", "space(s)"; nullopt otherwise.
std::optional<RepoType> parse_repo_type(std::string_view text);

// How files are laid out under the cache root.
enum class Layout {
  // The Hugging Face hub cache: <root>/models--org--name/{blobs,refs,snapshots}.
  // Shared with Python huggingface_hub, the hf CLI and @huggingface/hub.
  hub,
  // A plain per-application cache: <root>/<repo>/<file>, as kept by simple
  // application caches (for example an Elixir ModelCache). No revisions.
  flat,
};

// Progress of one file transfer, reported from the downloading thread.
struct ProgressEvent {
  std::string repo_id;
  std::string file;          // path inside the repo
  std::uint64_t downloaded;  // bytes written so far (including resumed bytes)
  std::uint64_t total;       // expected size, 0 when unknown
  bool finished = false;     // last event for this file
};
using ProgressCallback = std::function<void(const ProgressEvent&)>;

struct Options {
  // Branch, tag, "refs/pr/N" or commit hash.
  std::string revision = "main";
  RepoType repo_type = RepoType::model;
  Layout layout = Layout::hub;
  // Cache root. Empty: resolved from the environment (see settings.hpp).
  std::filesystem::path cache_dir;
  // Root folder name under the user cache dir for Layout::flat when cache_dir is empty
  // ($XDG_CACHE_HOME/<app_name>, else ~/.cache/<app_name>).
  std::string app_name = "hubcache";
  // Offline: no network at all. Unset: HF_HUB_OFFLINE decides.
  std::optional<bool> offline;
  // Hub base URL. Unset: HF_ENDPOINT, else https://huggingface.co.
  std::optional<std::string> endpoint;
  // Access token. Unset: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file.
  // Never printed nor logged; never sent to a host other than the endpoint's.
  std::optional<std::string> token;
  // Trust a refs/<revision> entry younger than this many seconds without asking
  // the Hub (a cache hit then costs no request). Unset: always revalidate a branch.
  std::optional<std::int64_t> max_age_seconds;
  // Download even when the file is cached.
  bool force_download = false;
  // Connections for one large file (ranged GETs on the CDN, 1 to 64). Files under
  // 8 MiB, and servers that do not honour ranges, use one stream.
  int connections = 8;
  // Bandwidth cap in bytes per second (0 = unlimited), over all connections of a
  // download. Downloads running at the same time in one process with the same cap
  // share one budget, so a whole-repo download stays under it in total.
  std::uint64_t max_bytes_per_second = 0;
  // Called as bytes arrive. May be called from worker threads.
  ProgressCallback progress;
  // When set and raised, downloads stop and throw Error(ErrorCode::cancelled).
  const std::atomic<bool>* cancel = nullptr;
};

}  // namespace hubcache
#pragma GCC visibility pop
