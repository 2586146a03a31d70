// The C API (include/hubcache/hubcache.h): a shell over the C++ API that turns every
// exception into a status and an error object, and C strings and handles into C++
// values. No cache logic lives here; beyond NULL checks and the ranges of option
// values, every decision is the C++ library's.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "hubcache/cache.hpp"
#include "hubcache/error.hpp"
#include "hubcache/hubcache.h"
#include "hubcache/options.hpp"
#include "transfer/download.hpp"

struct hubcache_error {
  hubcache_status code;
  char* message;  // malloc'd, except in the static fallbacks below
};

struct hubcache_cancel {
  std::atomic<bool> flag{false};
};

struct hubcache_options {
  hubcache::Options cxx;
};

struct hubcache_snapshot_options {
  hubcache::SnapshotOptions cxx;
};

// hubcache_progress and hubcache_snapshot_result are never defined: their pointers are
// the C++ ProgressEvent and SnapshotResult themselves, so the progress and plan callbacks
// hand the library's own objects to C without a copy.

namespace {

using hubcache::ErrorCode;

static_assert(std::atomic<bool>::is_always_lock_free, "hubcache_cancel_trigger must be async-signal-safe");
static_assert(sizeof(hubcache_status) == sizeof(int), "hubcache.h promises FFI users an int-sized status");

// The status values are the ErrorCode values: a status is a static_cast away.
constexpr bool same_code(hubcache_status s, ErrorCode c) { return static_cast<int>(s) == static_cast<int>(c); }
static_assert(same_code(HUBCACHE_ERR_INTERNAL, ErrorCode::internal) &&
              same_code(HUBCACHE_ERR_INVALID_ARGUMENT, ErrorCode::invalid_argument) &&
              same_code(HUBCACHE_ERR_NOT_CACHED, ErrorCode::not_cached) &&
              same_code(HUBCACHE_ERR_REPO_NOT_FOUND, ErrorCode::repo_not_found) &&
              same_code(HUBCACHE_ERR_GATED, ErrorCode::gated) &&
              same_code(HUBCACHE_ERR_REVISION_NOT_FOUND, ErrorCode::revision_not_found) &&
              same_code(HUBCACHE_ERR_ENTRY_NOT_FOUND, ErrorCode::entry_not_found) &&
              same_code(HUBCACHE_ERR_INTEGRITY, ErrorCode::integrity) &&
              same_code(HUBCACHE_ERR_NETWORK, ErrorCode::network) &&
              same_code(HUBCACHE_ERR_DISK_FULL, ErrorCode::disk_full) && same_code(HUBCACHE_ERR_IO, ErrorCode::io) &&
              same_code(HUBCACHE_ERR_CANCELLED, ErrorCode::cancelled) && same_code(HUBCACHE_ERR_HTTP, ErrorCode::http));
constexpr int kLastStatus = HUBCACHE_ERR_HTTP;

// When memory runs out while an error is being reported, the caller still gets an
// error object with the right code: one of these, which hubcache_error_free leaves alone.
char oom_text[] = "out of memory";
char oom_while_reporting[] = "out of memory while reporting this error";
hubcache_error fallback_errors[kLastStatus + 1] = {
    {HUBCACHE_OK, oom_while_reporting},
    {HUBCACHE_ERR_INTERNAL, oom_text},
    {HUBCACHE_ERR_INVALID_ARGUMENT, oom_while_reporting},
    {HUBCACHE_ERR_NOT_CACHED, oom_while_reporting},
    {HUBCACHE_ERR_REPO_NOT_FOUND, oom_while_reporting},
    {HUBCACHE_ERR_GATED, oom_while_reporting},
    {HUBCACHE_ERR_REVISION_NOT_FOUND, oom_while_reporting},
    {HUBCACHE_ERR_ENTRY_NOT_FOUND, oom_while_reporting},
    {HUBCACHE_ERR_INTEGRITY, oom_while_reporting},
    {HUBCACHE_ERR_NETWORK, oom_while_reporting},
    {HUBCACHE_ERR_DISK_FULL, oom_while_reporting},
    {HUBCACHE_ERR_IO, oom_while_reporting},
    {HUBCACHE_ERR_CANCELLED, oom_while_reporting},
    {HUBCACHE_ERR_HTTP, oom_while_reporting},
};

bool is_fallback(const hubcache_error* e) { return e >= fallback_errors && e < fallback_errors + (kLastStatus + 1); }

// A malloc'd copy (hubcache_free releases it), or nullptr when memory runs out.
char* copy_or_null(std::string_view s) noexcept {
  auto* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (!out) return nullptr;
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

char* copy(std::string_view s) {
  char* out = copy_or_null(s);
  if (!out) throw std::bad_alloc();
  return out;
}

// Owns C strings made for output parameters until all of a call's outputs exist, so a
// call that fails half-way (out of memory on the second string) leaks none of them.
struct OutString {
  char* s = nullptr;
  OutString() = default;
  explicit OutString(std::string_view v) : s(copy(v)) {}
  OutString(const OutString&) = delete;
  OutString& operator=(const OutString&) = delete;
  OutString& operator=(OutString&& o) noexcept {
    std::swap(s, o.s);
    return *this;
  }
  ~OutString() { std::free(s); }
  void give_to(char** out) {
    if (out) {
      *out = s;
      s = nullptr;
    }
  }
};

hubcache_status fail(hubcache_error** error, hubcache_status code, const char* message) noexcept {
  if (!error) return code;
  auto* e = static_cast<hubcache_error*>(std::malloc(sizeof(hubcache_error)));
  char* text = copy_or_null(message);
  if (!e || !text) {
    std::free(e);
    std::free(text);
    *error = &fallback_errors[code];
    return code;
  }
  e->code = code;
  e->message = text;
  *error = e;
  return code;
}

// Runs one call of the API: every exception becomes a status (and an error object when
// the caller asked for one). Nothing may leave a function of the C API by unwinding.
template <class Body>
hubcache_status guarded(hubcache_error** error, Body&& body) noexcept {
  if (error) *error = nullptr;
  try {
    body();
    return HUBCACHE_OK;
  } catch (const hubcache::Error& e) {
    const int code = static_cast<int>(e.code());
    return fail(error, code >= 1 && code <= kLastStatus ? static_cast<hubcache_status>(code) : HUBCACHE_ERR_INTERNAL,
                e.what());
  } catch (const std::bad_alloc&) {
    return fail(error, HUBCACHE_ERR_INTERNAL, oom_text);
  } catch (const std::exception& e) {
    // The CLI reports these the same way (exit code 1).
    return fail(error, HUBCACHE_ERR_INTERNAL, e.what());
  } catch (...) {
    return fail(error, HUBCACHE_ERR_INTERNAL, "unexpected exception of unknown type (a bug in hubcache)");
  }
}

// Setters report only a status: their failures are a NULL handle, a value out of range
// or no memory, which the status says entirely.
template <class Handle, class Body>
hubcache_status set(Handle* handle, Body&& body) noexcept {
  if (!handle) return HUBCACHE_ERR_INVALID_ARGUMENT;
  try {
    return body(handle->cxx);
  } catch (...) {
    return HUBCACHE_ERR_INTERNAL;  // std::bad_alloc: strings are the only thing set here that allocates
  }
}

std::string_view arg(const char* value, const char* name) {
  if (!value)
    throw hubcache::Error(ErrorCode::invalid_argument,
                          std::string(name) + " is NULL: pass a NUL-terminated UTF-8 string (see hubcache.h).");
  return value;
}

const hubcache::Options& cxx(const hubcache_options* options) {
  static const hubcache::Options defaults;
  return options ? options->cxx : defaults;
}

const hubcache::ProgressEvent& event(const hubcache_progress* p) {
  return *reinterpret_cast<const hubcache::ProgressEvent*>(p);
}

const hubcache::SnapshotResult* result_of(const hubcache_snapshot_result* r) {
  return reinterpret_cast<const hubcache::SnapshotResult*>(r);
}

const hubcache::SnapshotFile* file_of(const hubcache_snapshot_result* r, size_t index) {
  const auto* result = result_of(r);
  return result && index < result->files.size() ? &result->files[index] : nullptr;
}

}  // namespace

extern "C" {

// ---- status, errors, memory, version -------------------------------------------------

const char* hubcache_status_name(hubcache_status status) {
  if (status == HUBCACHE_OK) return "ok";
  if (status < 1 || status > kLastStatus) return "unknown";
  // to_string returns string literals, so data() is NUL-terminated.
  return hubcache::to_string(static_cast<ErrorCode>(status)).data();
}

hubcache_status hubcache_error_code(const hubcache_error* error) {
  return error ? error->code : HUBCACHE_ERR_INVALID_ARGUMENT;
}

const char* hubcache_error_message(const hubcache_error* error) { return error ? error->message : ""; }

void hubcache_error_free(hubcache_error* error) {
  if (!error || is_fallback(error)) return;
  std::free(error->message);
  std::free(error);
}

void hubcache_free(void* string) { std::free(string); }

const char* hubcache_version(void) { return HUBCACHE_VERSION; }

int hubcache_api_version(void) { return HUBCACHE_API_VERSION; }

// ---- cancellation --------------------------------------------------------------------

hubcache_cancel* hubcache_cancel_new(void) { return new (std::nothrow) hubcache_cancel; }

void hubcache_cancel_free(hubcache_cancel* cancel) { delete cancel; }

void hubcache_cancel_trigger(hubcache_cancel* cancel) {
  if (cancel) cancel->flag.store(true);
}

void hubcache_cancel_reset(hubcache_cancel* cancel) {
  if (cancel) cancel->flag.store(false);
}

int hubcache_cancel_is_triggered(const hubcache_cancel* cancel) { return cancel && cancel->flag.load() ? 1 : 0; }

// ---- options -------------------------------------------------------------------------

hubcache_options* hubcache_options_new(void) {
  try {
    return new hubcache_options;
  } catch (...) {
    return nullptr;
  }
}

void hubcache_options_free(hubcache_options* options) { delete options; }

hubcache_status hubcache_options_set_revision(hubcache_options* options, const char* revision) {
  return set(options, [&](hubcache::Options& o) {
    o.revision = revision ? revision : "main";
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_repo_type(hubcache_options* options, hubcache_repo_type type) {
  return set(options, [&](hubcache::Options& o) {
    switch (type) {
      case HUBCACHE_REPO_MODEL:
        o.repo_type = hubcache::RepoType::model;
        return HUBCACHE_OK;
      case HUBCACHE_REPO_DATASET:
        o.repo_type = hubcache::RepoType::dataset;
        return HUBCACHE_OK;
      case HUBCACHE_REPO_SPACE:
        o.repo_type = hubcache::RepoType::space;
        return HUBCACHE_OK;
    }
    return HUBCACHE_ERR_INVALID_ARGUMENT;
  });
}

hubcache_status hubcache_options_set_layout(hubcache_options* options, hubcache_layout layout) {
  return set(options, [&](hubcache::Options& o) {
    switch (layout) {
      case HUBCACHE_LAYOUT_HUB:
        o.layout = hubcache::Layout::hub;
        return HUBCACHE_OK;
      case HUBCACHE_LAYOUT_FLAT:
        o.layout = hubcache::Layout::flat;
        return HUBCACHE_OK;
    }
    return HUBCACHE_ERR_INVALID_ARGUMENT;
  });
}

hubcache_status hubcache_options_set_cache_dir(hubcache_options* options, const char* cache_dir) {
  return set(options, [&](hubcache::Options& o) {
    o.cache_dir = cache_dir ? cache_dir : "";
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_app_name(hubcache_options* options, const char* app_name) {
  return set(options, [&](hubcache::Options& o) {
    if (!app_name) {
      o.app_name = "hubcache";
      return HUBCACHE_OK;
    }
    // It names one folder under the user cache folder, never a path out of it.
    const std::string_view name = app_name;
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
      return HUBCACHE_ERR_INVALID_ARGUMENT;
    o.app_name = name;
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_offline(hubcache_options* options, int offline) {
  return set(options, [&](hubcache::Options& o) {
    if (offline < -1 || offline > 1) return HUBCACHE_ERR_INVALID_ARGUMENT;
    o.offline = offline < 0 ? std::nullopt : std::optional<bool>(offline == 1);
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_endpoint(hubcache_options* options, const char* endpoint) {
  return set(options, [&](hubcache::Options& o) {
    o.endpoint = endpoint && *endpoint ? std::optional<std::string>(endpoint) : std::nullopt;
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_token(hubcache_options* options, const char* token) {
  return set(options, [&](hubcache::Options& o) {
    o.token = token ? std::optional<std::string>(token) : std::nullopt;
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_max_age(hubcache_options* options, int64_t seconds) {
  return set(options, [&](hubcache::Options& o) {
    o.max_age_seconds = seconds < 0 ? std::nullopt : std::optional<std::int64_t>(seconds);
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_force_download(hubcache_options* options, int force) {
  return set(options, [&](hubcache::Options& o) {
    o.force_download = force != 0;
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_connections(hubcache_options* options, int connections) {
  return set(options, [&](hubcache::Options& o) {
    if (connections < 1 || connections > 64) return HUBCACHE_ERR_INVALID_ARGUMENT;
    o.connections = connections;
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_max_bytes_per_second(hubcache_options* options, uint64_t bytes_per_second) {
  return set(options, [&](hubcache::Options& o) {
    o.max_bytes_per_second = bytes_per_second;
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_cancel(hubcache_options* options, hubcache_cancel* cancel) {
  return set(options, [&](hubcache::Options& o) {
    o.cancel = cancel ? &cancel->flag : nullptr;
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_options_set_progress(hubcache_options* options, hubcache_progress_fn callback, void* user) {
  return set(options, [&](hubcache::Options& o) {
    if (!callback) {
      o.progress = nullptr;
      return HUBCACHE_OK;
    }
    o.progress = [callback, user](const hubcache::ProgressEvent& e) {
      callback(reinterpret_cast<const hubcache_progress*>(&e), user);
    };
    return HUBCACHE_OK;
  });
}

const char* hubcache_progress_repo(const hubcache_progress* p) { return p ? event(p).repo_id.c_str() : ""; }
const char* hubcache_progress_file(const hubcache_progress* p) { return p ? event(p).file.c_str() : ""; }
uint64_t hubcache_progress_downloaded(const hubcache_progress* p) { return p ? event(p).downloaded : 0; }
uint64_t hubcache_progress_total(const hubcache_progress* p) { return p ? event(p).total : 0; }
int hubcache_progress_finished(const hubcache_progress* p) { return p && event(p).finished ? 1 : 0; }

// ---- the cache root ------------------------------------------------------------------

hubcache_status hubcache_cache_root(const hubcache_options* options, char** path, hubcache_error** error) {
  if (path) *path = nullptr;
  return guarded(error, [&] { OutString(hubcache::cache_root(cxx(options)).native()).give_to(path); });
}

hubcache_status hubcache_resolve_cache_root(const hubcache_options* options, char** path, hubcache_error** error) {
  if (path) *path = nullptr;
  return guarded(error, [&] { OutString(hubcache::resolve_cache_root(cxx(options)).native()).give_to(path); });
}

// ---- one file ------------------------------------------------------------------------

hubcache_status hubcache_fetch(const char* repo, const char* file, const hubcache_options* options, char** path,
                               hubcache_error** error) {
  if (path) *path = nullptr;
  return guarded(error, [&] {
    auto local = hubcache::fetch(arg(repo, "repo"), arg(file, "file"), cxx(options));
    OutString(local.native()).give_to(path);
  });
}

hubcache_status hubcache_is_cached(const char* repo, const char* file, const hubcache_options* options, int* cached,
                                   hubcache_error** error) {
  if (cached) *cached = 0;
  return guarded(error, [&] {
    const bool yes = hubcache::is_cached(arg(repo, "repo"), arg(file, "file"), cxx(options));
    if (cached) *cached = yes ? 1 : 0;
  });
}

hubcache_status hubcache_path(const char* repo, const char* file, const hubcache_options* options, char** path,
                              hubcache_error** error) {
  if (path) *path = nullptr;
  return guarded(error, [&] {
    const auto& o = cxx(options);
    auto where = hubcache::path(arg(repo, "repo"), arg(file, "file"), o);
    if (!where)
      throw hubcache::Error(
          ErrorCode::not_cached,
          hubcache::not_cached_message(repo, file, o,
                                       "its path is unknown: the cache has no refs/" + o.revision + " for this repo"));
    OutString(where->native()).give_to(path);
  });
}

hubcache_status hubcache_lookup(const char* repo, const char* file, const hubcache_options* options,
                                hubcache_lookup_status* status, char** path, char** commit, hubcache_error** error) {
  if (status) *status = HUBCACHE_LOOKUP_UNKNOWN;
  if (path) *path = nullptr;
  if (commit) *commit = nullptr;
  return guarded(error, [&] {
    const auto found = hubcache::lookup(arg(repo, "repo"), arg(file, "file"), cxx(options));
    OutString out_path, out_commit;
    if (path && found.status == hubcache::CacheLookup::Status::cached) out_path = OutString(found.path.native());
    if (commit && !found.commit.empty()) out_commit = OutString(found.commit);
    out_path.give_to(path);
    out_commit.give_to(commit);
    if (status) {
      switch (found.status) {
        case hubcache::CacheLookup::Status::cached:
          *status = HUBCACHE_LOOKUP_CACHED;
          break;
        case hubcache::CacheLookup::Status::missing_upstream:
          *status = HUBCACHE_LOOKUP_MISSING_UPSTREAM;
          break;
        case hubcache::CacheLookup::Status::unknown:
          *status = HUBCACHE_LOOKUP_UNKNOWN;
          break;
      }
    }
  });
}

// ---- whole repos ---------------------------------------------------------------------

hubcache_snapshot_options* hubcache_snapshot_options_new(void) {
  try {
    return new hubcache_snapshot_options;
  } catch (...) {
    return nullptr;
  }
}

void hubcache_snapshot_options_free(hubcache_snapshot_options* options) { delete options; }

hubcache_status hubcache_snapshot_options_add_allow_pattern(hubcache_snapshot_options* options, const char* pattern) {
  return set(options, [&](hubcache::SnapshotOptions& o) {
    if (!pattern) return HUBCACHE_ERR_INVALID_ARGUMENT;
    o.allow_patterns.emplace_back(pattern);
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_snapshot_options_add_ignore_pattern(hubcache_snapshot_options* options, const char* pattern) {
  return set(options, [&](hubcache::SnapshotOptions& o) {
    if (!pattern) return HUBCACHE_ERR_INVALID_ARGUMENT;
    o.ignore_patterns.emplace_back(pattern);
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_snapshot_options_set_max_workers(hubcache_snapshot_options* options, int max_workers) {
  return set(options, [&](hubcache::SnapshotOptions& o) {
    if (max_workers < 1) return HUBCACHE_ERR_INVALID_ARGUMENT;
    o.max_workers = max_workers;
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_snapshot_options_set_local_dir(hubcache_snapshot_options* options, const char* local_dir) {
  return set(options, [&](hubcache::SnapshotOptions& o) {
    o.local_dir = local_dir ? local_dir : "";
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_snapshot_options_set_dry_run(hubcache_snapshot_options* options, int dry_run) {
  return set(options, [&](hubcache::SnapshotOptions& o) {
    o.dry_run = dry_run != 0;
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_snapshot_options_set_on_plan(hubcache_snapshot_options* options, hubcache_plan_fn callback,
                                                      void* user) {
  return set(options, [&](hubcache::SnapshotOptions& o) {
    if (!callback) {
      o.on_plan = nullptr;
      return HUBCACHE_OK;
    }
    o.on_plan = [callback, user](const hubcache::SnapshotResult& plan) {
      callback(reinterpret_cast<const hubcache_snapshot_result*>(&plan), user);
    };
    return HUBCACHE_OK;
  });
}

hubcache_status hubcache_snapshot(const char* repo, const hubcache_options* options,
                                  const hubcache_snapshot_options* snapshot_options, hubcache_snapshot_result** result,
                                  hubcache_error** error) {
  if (result) *result = nullptr;
  return guarded(error, [&] {
    static const hubcache::SnapshotOptions defaults;
    auto out = std::make_unique<hubcache::SnapshotResult>(
        hubcache::snapshot(arg(repo, "repo"), cxx(options), snapshot_options ? snapshot_options->cxx : defaults));
    if (result) *result = reinterpret_cast<hubcache_snapshot_result*>(out.release());
  });
}

void hubcache_snapshot_result_free(hubcache_snapshot_result* result) {
  delete reinterpret_cast<hubcache::SnapshotResult*>(result);
}

const char* hubcache_snapshot_result_path(const hubcache_snapshot_result* r) {
  return r ? result_of(r)->path.c_str() : nullptr;
}

const char* hubcache_snapshot_result_commit(const hubcache_snapshot_result* r) {
  return r ? result_of(r)->commit.c_str() : nullptr;
}

size_t hubcache_snapshot_result_file_count(const hubcache_snapshot_result* r) {
  return r ? result_of(r)->files.size() : 0;
}

const char* hubcache_snapshot_result_file_path(const hubcache_snapshot_result* r, size_t index) {
  const auto* f = file_of(r, index);
  return f ? f->path.c_str() : nullptr;
}

uint64_t hubcache_snapshot_result_file_size(const hubcache_snapshot_result* r, size_t index) {
  const auto* f = file_of(r, index);
  return f ? f->size : 0;
}

const char* hubcache_snapshot_result_file_etag(const hubcache_snapshot_result* r, size_t index) {
  const auto* f = file_of(r, index);
  return f ? f->etag.c_str() : nullptr;
}

int hubcache_snapshot_result_file_cached(const hubcache_snapshot_result* r, size_t index) {
  const auto* f = file_of(r, index);
  return f && f->cached ? 1 : 0;
}

int hubcache_snapshot_result_file_will_download(const hubcache_snapshot_result* r, size_t index) {
  const auto* f = file_of(r, index);
  return f && f->will_download ? 1 : 0;
}

int hubcache_snapshot_result_file_downloaded(const hubcache_snapshot_result* r, size_t index) {
  const auto* f = file_of(r, index);
  return f && f->downloaded ? 1 : 0;
}

hubcache_status hubcache_snapshot_path(const char* repo, const hubcache_options* options, char** path,
                                       hubcache_error** error) {
  if (path) *path = nullptr;
  return guarded(error, [&] {
    const auto& o = cxx(options);
    auto where = hubcache::snapshot_path(arg(repo, "repo"), o);
    if (!where)
      throw hubcache::Error(ErrorCode::not_cached, "The commit of revision '" + o.revision + "' of " +
                                                       std::string(hubcache::to_string(o.repo_type)) + " '" + repo +
                                                       "' is not in the cache (no refs/" + o.revision +
                                                       "). Run 'hubcache download " + repo +
                                                       "' with network access, or pass a 40-hex commit.");
    OutString(where->native()).give_to(path);
  });
}

}  // extern "C"
