/* hubcache.h: the C API of hubcache, for C and for any language with a C FFI
 * (Rust, Go, Swift, C#, Zig, Python ctypes, Erlang/Elixir NIFs...).
 *
 *   hubcache_error* err = NULL;
 *   char* path = NULL;
 *   if (hubcache_fetch("org/model", "onnx/model.onnx", NULL, &path, &err) == HUBCACHE_OK) {
 *     use(path);
 *     hubcache_free(path);
 *   } else {
 *     fprintf(stderr, "%s\n", hubcache_error_message(err));
 *     hubcache_error_free(err);
 *   }
 *
 * The same cache as the C++ API (hubcache/cache.hpp), Python huggingface_hub, the hf CLI
 * and the hubcache command, with the same environment variables (HF_HUB_CACHE,
 * HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE...). Link with -lhubcache (pkg-config hubcache).
 *
 * Conventions, for every function unless its comment says otherwise:
 * - Status: a function that can fail returns a hubcache_status (an enum, so an int in every
 *   C ABI hubcache builds for). HUBCACHE_OK is 0; every other value equals the C++
 *   hubcache::ErrorCode and the hubcache CLI's exit code for the same failure (docs/cli.md,
 *   "Exit codes"). Nothing else escapes: no C++ exception ever
 *   crosses this API (out of memory is HUBCACHE_ERR_INTERNAL, "out of memory").
 * - Errors: the last parameter, `hubcache_error** error`, may be NULL. When it is not, a
 *   failure stores a new error object in *error (what failed, for which repo, file and
 *   revision, and what to try), which the caller frees with hubcache_error_free; success
 *   stores NULL. Free a previous error before passing the same variable again.
 * - Strings: inputs are NUL-terminated UTF-8 (paths are passed to the OS as these bytes).
 *   Output strings (char** parameters) are allocated by the library and owned by the
 *   caller, who frees each with hubcache_free; on failure they are set to NULL. Output
 *   parameters may be NULL when the caller does not want that output.
 * - Handles (hubcache_options, hubcache_snapshot_options, hubcache_cancel,
 *   hubcache_snapshot_result, hubcache_error) are opaque: created by their _new function (or
 *   returned by a call), freed by their _free function, which accepts NULL. New fields are
 *   new setters, so programs built against an older header keep working.
 * - Threads: every function may be called from any thread, and calls run concurrently,
 *   including calls that share one hubcache_options or hubcache_snapshot_options (a call
 *   only reads them). A setter must not run while another thread uses the same handle.
 *   Concurrent downloads of the same file, in this process or others, download it once
 *   (a file lock in the cache) and all return it.
 * - Callbacks run on the thread that made the call or on a worker thread of the library
 *   (see each setter); they must return normally (no longjmp, no C++ exception) and
 *   must not free or change the handles the call is using.
 */
#ifndef HUBCACHE_H
#define HUBCACHE_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define HUBCACHE_API __attribute__((visibility("default")))
#else
#define HUBCACHE_API
#endif

/* The API this header declares. Bumped when functions are added; a library whose
 * hubcache_api_version() is at least the value a program was built with has every
 * function the program uses. Existing functions never change (that would change the
 * library's SONAME, libhubcache.so.0). */
#define HUBCACHE_API_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes ------------------------------------------------------------------ */

typedef enum hubcache_status {
  HUBCACHE_OK = 0,
  HUBCACHE_ERR_INTERNAL = 1,           /* a bug, an unexpected condition, or out of memory */
  HUBCACHE_ERR_INVALID_ARGUMENT = 2,   /* bad repo id, file name, revision, option value, NULL */
  HUBCACHE_ERR_NOT_CACHED = 3,         /* offline (or no network) and not in the cache */
  HUBCACHE_ERR_REPO_NOT_FOUND = 4,     /* no such repo, or private and no valid token */
  HUBCACHE_ERR_GATED = 5,              /* gated repo: request access on its page */
  HUBCACHE_ERR_REVISION_NOT_FOUND = 6, /* branch, tag or commit does not exist upstream */
  HUBCACHE_ERR_ENTRY_NOT_FOUND = 7,    /* the file does not exist at that revision */
  HUBCACHE_ERR_INTEGRITY = 8,          /* bytes do not match their hash or size */
  HUBCACHE_ERR_NETWORK = 9,            /* connection, TLS, timeout, 5xx or 429 after retries */
  HUBCACHE_ERR_DISK_FULL = 10,         /* no space left on the cache's file system */
  HUBCACHE_ERR_IO = 11,                /* another file-system error (permissions, read-only) */
  HUBCACHE_ERR_CANCELLED = 12,         /* a hubcache_cancel was triggered */
  HUBCACHE_ERR_HTTP = 13               /* another HTTP status from the server (400, 403...) */
} hubcache_status;

/* A short stable name: "ok", "not_cached", "repo_not_found"... (the names of the C++
 * hubcache::to_string(ErrorCode) and of the CLI's JSON output); "unknown" for a value
 * outside the enum. A static string: never free it. */
HUBCACHE_API const char* hubcache_status_name(hubcache_status status);

/* ---- Errors ------------------------------------------------------------------------ */

typedef struct hubcache_error hubcache_error;

/* The status of the failed call (never HUBCACHE_OK); HUBCACHE_ERR_INVALID_ARGUMENT for NULL. */
HUBCACHE_API hubcache_status hubcache_error_code(const hubcache_error* error);
/* One line: what failed, for which repo/file/revision, what to try. Owned by `error`, valid
 * until hubcache_error_free. Never NULL (an empty string for a NULL error). Never contains
 * a token. */
HUBCACHE_API const char* hubcache_error_message(const hubcache_error* error);
HUBCACHE_API void hubcache_error_free(hubcache_error* error);

/* ---- Memory and version ------------------------------------------------------------ */

/* Frees a string the library returned through a char** parameter. NULL is a no-op. Use
 * this, not free(): the library may use another allocator than the program. */
HUBCACHE_API void hubcache_free(void* string);

/* The library's version, "MAJOR.MINOR.PATCH". A static string. */
HUBCACHE_API const char* hubcache_version(void);
/* The HUBCACHE_API_VERSION the library was built with (see above). */
HUBCACHE_API int hubcache_api_version(void);

/* ---- Cancellation ------------------------------------------------------------------ */

/* A flag that stops the calls using it: a download, a wait for another process's download
 * of the same file, a snapshot. Those calls then fail with HUBCACHE_ERR_CANCELLED within
 * a fraction of a second; a partial download is kept in the cache and resumed by the
 * next call (never published as a complete file). */
typedef struct hubcache_cancel hubcache_cancel;

/* NULL when out of memory. Free with hubcache_cancel_free once no call uses it. */
HUBCACHE_API hubcache_cancel* hubcache_cancel_new(void);
HUBCACHE_API void hubcache_cancel_free(hubcache_cancel* cancel);
/* Raises the flag. Safe from any thread and from a signal handler (a lock-free atomic
 * store), while calls that use it run. */
HUBCACHE_API void hubcache_cancel_trigger(hubcache_cancel* cancel);
/* Lowers the flag, for reuse by later calls. Not while a call uses it. */
HUBCACHE_API void hubcache_cancel_reset(hubcache_cancel* cancel);
/* 1 when raised, else 0 (also for NULL). Safe from any thread. */
HUBCACHE_API int hubcache_cancel_is_triggered(const hubcache_cancel* cancel);

/* ---- Options ----------------------------------------------------------------------- */

typedef enum hubcache_repo_type {
  HUBCACHE_REPO_MODEL = 0,
  HUBCACHE_REPO_DATASET = 1,
  HUBCACHE_REPO_SPACE = 2
} hubcache_repo_type;

typedef enum hubcache_layout {
  /* The Hugging Face hub cache, <root>/models--org--name/{blobs,refs,snapshots}: shared
   * with Python huggingface_hub, the hf CLI and the hubcache command. The default. */
  HUBCACHE_LAYOUT_HUB = 0,
  /* A plain per-application cache, <root>/<repo>/<file>, no revisions. Its root defaults
   * to $XDG_CACHE_HOME/<app name> (else ~/.cache/<app name>). */
  HUBCACHE_LAYOUT_FLAT = 1
} hubcache_layout;

/* What a call may choose; NULL options in any call means all defaults. The defaults are
 * those of hubcache::Options: revision "main", a model repo, the hub layout, and the
 * cache root, endpoint, token and offline mode from the environment. */
typedef struct hubcache_options hubcache_options;

/* NULL when out of memory. */
HUBCACHE_API hubcache_options* hubcache_options_new(void);
HUBCACHE_API void hubcache_options_free(hubcache_options* options);

/* Every setter returns HUBCACHE_OK, HUBCACHE_ERR_INVALID_ARGUMENT (NULL handle, a value out
 * of range) or HUBCACHE_ERR_INTERNAL (out of memory); the handle is unchanged on failure.
 * Strings are copied. */

/* Branch, tag, "refs/pr/N" or 40-hex commit; NULL: "main". Checked by the calls. */
HUBCACHE_API hubcache_status hubcache_options_set_revision(hubcache_options* options, const char* revision);
HUBCACHE_API hubcache_status hubcache_options_set_repo_type(hubcache_options* options, hubcache_repo_type type);
HUBCACHE_API hubcache_status hubcache_options_set_layout(hubcache_options* options, hubcache_layout layout);
/* The cache root ("~" and $VARS expanded); NULL or "": from the environment (HF_HUB_CACHE,
 * HF_HOME...; for the flat layout, the user cache folder and the app name). */
HUBCACHE_API hubcache_status hubcache_options_set_cache_dir(hubcache_options* options, const char* cache_dir);
/* The folder name under the user cache folder for the flat layout; NULL: "hubcache". A
 * single non-empty path component. */
HUBCACHE_API hubcache_status hubcache_options_set_app_name(hubcache_options* options, const char* app_name);
/* 1: offline, nothing is sent (a miss is HUBCACHE_ERR_NOT_CACHED); 0: online; -1 (the
 * default): HF_HUB_OFFLINE decides. */
HUBCACHE_API hubcache_status hubcache_options_set_offline(hubcache_options* options, int offline);
/* Hub base URL, e.g. "http://mirror:8080"; NULL or "": HF_ENDPOINT, else https://huggingface.co. */
HUBCACHE_API hubcache_status hubcache_options_set_endpoint(hubcache_options* options, const char* endpoint);
/* Access token; NULL: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file; "": send none.
 * Never logged nor put in an error message; sent only to the endpoint's host. */
HUBCACHE_API hubcache_status hubcache_options_set_token(hubcache_options* options, const char* token);
/* Trust a branch's recorded commit confirmed less than this many seconds ago, so a hit
 * sends no request. Negative (the default): always ask the Hub about a branch. */
HUBCACHE_API hubcache_status hubcache_options_set_max_age(hubcache_options* options, int64_t seconds);
/* 1: download even when cached. Not with offline mode (HUBCACHE_ERR_INVALID_ARGUMENT then). */
HUBCACHE_API hubcache_status hubcache_options_set_force_download(hubcache_options* options, int force);
/* Connections for one large file, 1 to 64 (default 8). */
HUBCACHE_API hubcache_status hubcache_options_set_connections(hubcache_options* options, int connections);
/* Bandwidth cap in bytes per second over all connections of a download; 0: none. Downloads
 * running at the same time in one process with the same cap share one budget. */
HUBCACHE_API hubcache_status hubcache_options_set_max_bytes_per_second(hubcache_options* options,
                                                                       uint64_t bytes_per_second);
/* Cancellation flag for the calls using these options; NULL: none. The flag must outlive
 * those calls (the options do not own it). */
HUBCACHE_API hubcache_status hubcache_options_set_cancel(hubcache_options* options, hubcache_cancel* cancel);

/* Progress of one file transfer. Valid only during the callback. */
typedef struct hubcache_progress hubcache_progress;
/* The repo id and the file's path inside it; owned by the event. */
HUBCACHE_API const char* hubcache_progress_repo(const hubcache_progress* event);
HUBCACHE_API const char* hubcache_progress_file(const hubcache_progress* event);
/* Bytes on disk so far (resumed bytes included), and the file's size (0 when unknown). */
HUBCACHE_API uint64_t hubcache_progress_downloaded(const hubcache_progress* event);
HUBCACHE_API uint64_t hubcache_progress_total(const hubcache_progress* event);
/* 1 on the last event of a file (downloaded == total), else 0. */
HUBCACHE_API int hubcache_progress_finished(const hubcache_progress* event);

/* Called as bytes arrive (a few times per second per file, then once finished), only
 * when something is downloaded: a cache hit reports nothing. hubcache_fetch calls it on
 * the calling thread; hubcache_snapshot also on its worker threads, several at once, so
 * a callback shared by them must be thread-safe. `user` is passed through untouched. */
typedef void (*hubcache_progress_fn)(const hubcache_progress* event, void* user);
/* NULL `callback`: no progress. */
HUBCACHE_API hubcache_status hubcache_options_set_progress(hubcache_options* options, hubcache_progress_fn callback,
                                                           void* user);

/* ---- The cache root ---------------------------------------------------------------- */

/* The absolute cache root (symlinks resolved): the options' cache dir, else the
 * environment's. hubcache_cache_root creates it when missing (HUBCACHE_ERR_IO when that
 * fails); hubcache_resolve_cache_root writes nothing. */
HUBCACHE_API hubcache_status hubcache_cache_root(const hubcache_options* options, char** path, hubcache_error** error);
HUBCACHE_API hubcache_status hubcache_resolve_cache_root(const hubcache_options* options, char** path,
                                                         hubcache_error** error);

/* ---- One file ---------------------------------------------------------------------- */
/* `repo` is "org/name" (or a legacy single name); `file` a path inside it with '/'
 * separators ("onnx/model.onnx"). Invalid ids, and file names that would leave the repo
 * folder (".." components, absolute paths, backslashes), fail with
 * HUBCACHE_ERR_INVALID_ARGUMENT before any I/O. */

/* The local path of the file, downloading it on a miss (verified against the Hub's hash
 * before it appears in the cache). Offline, a miss is HUBCACHE_ERR_NOT_CACHED. Online, a
 * cached 40-hex revision costs no request, a branch one HEAD (none within max_age); when
 * the Hub cannot be reached, the copy cached for that revision is returned. Blocks for
 * the download: call it from a thread that may block. */
HUBCACHE_API hubcache_status hubcache_fetch(const char* repo, const char* file, const hubcache_options* options,
                                            char** path, hubcache_error** error);

/* *cached = 1 when the file resolves to a complete file in the cache, else 0. Offline:
 * reads refs/ and stats, no network, no writes. */
HUBCACHE_API hubcache_status hubcache_is_cached(const char* repo, const char* file, const hubcache_options* options,
                                                int* cached, hubcache_error** error);

/* Where the file is or would be, without checking that it exists: hub layout
 * <root>/<repo folder>/snapshots/<commit>/<file>, flat layout <root>/<repo>/<file>.
 * Offline, no writes. HUBCACHE_ERR_NOT_CACHED when the revision is a branch or tag whose
 * commit the cache does not record yet (the path cannot be known without the Hub). */
HUBCACHE_API hubcache_status hubcache_path(const char* repo, const char* file, const hubcache_options* options,
                                           char** path, hubcache_error** error);

typedef enum hubcache_lookup_status {
  HUBCACHE_LOOKUP_UNKNOWN = 0,         /* not in the cache: the Hub must be asked */
  HUBCACHE_LOOKUP_CACHED = 1,          /* *path is a complete file */
  HUBCACHE_LOOKUP_MISSING_UPSTREAM = 2 /* the Hub said the file does not exist at *commit */
} hubcache_lookup_status;

/* What the cache knows about the file (Python's try_to_load_from_cache). Offline, no
 * writes. *path is set when cached (else NULL); *commit when the revision's commit is
 * known (else NULL). */
HUBCACHE_API hubcache_status hubcache_lookup(const char* repo, const char* file, const hubcache_options* options,
                                             hubcache_lookup_status* status, char** path, char** commit,
                                             hubcache_error** error);

/* ---- Whole repos ------------------------------------------------------------------- */

typedef struct hubcache_snapshot_options hubcache_snapshot_options;
/* The files of a snapshot: a result of hubcache_snapshot, or the plan passed to the
 * on_plan callback. */
typedef struct hubcache_snapshot_result hubcache_snapshot_result;

/* NULL when out of memory. NULL snapshot options in hubcache_snapshot means all defaults:
 * every file, 8 workers, into the cache. */
HUBCACHE_API hubcache_snapshot_options* hubcache_snapshot_options_new(void);
HUBCACHE_API void hubcache_snapshot_options_free(hubcache_snapshot_options* options);
/* fnmatch patterns, as huggingface_hub's: '*' crosses '/', and "dir/" means every file
 * under dir. A file is kept when it matches an allow pattern (if any was added) and no
 * ignore pattern. */
HUBCACHE_API hubcache_status hubcache_snapshot_options_add_allow_pattern(hubcache_snapshot_options* options,
                                                                         const char* pattern);
HUBCACHE_API hubcache_status hubcache_snapshot_options_add_ignore_pattern(hubcache_snapshot_options* options,
                                                                          const char* pattern);
/* Files downloaded in parallel, at least 1 (default 8). */
HUBCACHE_API hubcache_status hubcache_snapshot_options_set_max_workers(hubcache_snapshot_options* options,
                                                                       int max_workers);
/* Real files in this folder (huggingface_hub's local_dir format) instead of the cache's
 * snapshots/; NULL or "": the cache. */
HUBCACHE_API hubcache_status hubcache_snapshot_options_set_local_dir(hubcache_snapshot_options* options,
                                                                     const char* local_dir);
/* 1: resolve and list, write nothing; the result says what would be downloaded. */
HUBCACHE_API hubcache_status hubcache_snapshot_options_set_dry_run(hubcache_snapshot_options* options, int dry_run);

/* Called once the file list is known, before any download (e.g. to size a progress bar),
 * on the calling thread. `plan` is valid only during the callback; do not free it. */
typedef void (*hubcache_plan_fn)(const hubcache_snapshot_result* plan, void* user);
HUBCACHE_API hubcache_status hubcache_snapshot_options_set_on_plan(hubcache_snapshot_options* options,
                                                                   hubcache_plan_fn callback, void* user);

/* Downloads every selected file of a revision: resolved once to a commit, listed once,
 * files in parallel, cached files cost nothing. Offline (or the Hub unreachable), resolves
 * from the cache: HUBCACHE_ERR_NOT_CACHED when the snapshot is absent or incomplete. On
 * success *result receives the result, freed with hubcache_snapshot_result_free. */
HUBCACHE_API hubcache_status hubcache_snapshot(const char* repo, const hubcache_options* options,
                                               const hubcache_snapshot_options* snapshot_options,
                                               hubcache_snapshot_result** result, hubcache_error** error);
HUBCACHE_API void hubcache_snapshot_result_free(hubcache_snapshot_result* result);

/* The snapshot folder (<root>/<repo folder>/snapshots/<commit>, or the local dir) and the
 * commit; owned by the result. */
HUBCACHE_API const char* hubcache_snapshot_result_path(const hubcache_snapshot_result* result);
HUBCACHE_API const char* hubcache_snapshot_result_commit(const hubcache_snapshot_result* result);
/* The files the patterns selected, index 0 to count - 1. Out of range (or NULL): NULL, 0. */
HUBCACHE_API size_t hubcache_snapshot_result_file_count(const hubcache_snapshot_result* result);
/* Path inside the repo; owned by the result. */
HUBCACHE_API const char* hubcache_snapshot_result_file_path(const hubcache_snapshot_result* result, size_t index);
HUBCACHE_API uint64_t hubcache_snapshot_result_file_size(const hubcache_snapshot_result* result, size_t index);
/* Blob name: sha256 for LFS files, git blob sha1 otherwise; owned by the result. */
HUBCACHE_API const char* hubcache_snapshot_result_file_etag(const hubcache_snapshot_result* result, size_t index);
/* 1 when the file was already present before the call. */
HUBCACHE_API int hubcache_snapshot_result_file_cached(const hubcache_snapshot_result* result, size_t index);
/* 1 when the call downloads it (not cached, or force_download). */
HUBCACHE_API int hubcache_snapshot_result_file_will_download(const hubcache_snapshot_result* result, size_t index);
/* 1 when this call moved the file's bytes; 0 when it was cached, copied from the cache into
 * a local dir, published meanwhile by another process that held the file's lock first, or
 * in a dry run's plan. */
HUBCACHE_API int hubcache_snapshot_result_file_downloaded(const hubcache_snapshot_result* result, size_t index);

/* The snapshot folder of a revision when its commit is known locally (a 40-hex revision or
 * a recorded branch); the folder may be absent or incomplete. Offline, no writes.
 * HUBCACHE_ERR_NOT_CACHED when the commit is unknown. */
HUBCACHE_API hubcache_status hubcache_snapshot_path(const char* repo, const hubcache_options* options, char** path,
                                                    hubcache_error** error);

#ifdef __cplusplus
}
#endif

#endif /* HUBCACHE_H */
