/* fetch_model.c: the C twin of fetch_model.cpp, through the C API (hubcache.h) and the
 * shared library. Fetches one file of a Hub repo into the cache (downloading on a miss,
 * verified), then prints its local path and size.
 *
 *   fetch_model_c [REPO] [FILE] [REVISION]
 *   fetch_model_c Xenova/all-MiniLM-L6-v2 onnx/model.onnx
 *
 *   cc fetch_model.c $(pkg-config --cflags --libs hubcache) -o fetch_model_c
 *
 * The cache, endpoint, token and offline mode come from the environment, exactly as for
 * huggingface_hub (HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE...).
 * Exit code: 0, or the hubcache status (the CLI's exit codes, docs/cli.md#exit-codes).
 */
#define _POSIX_C_SOURCE 200809L /* stat() under -std=c99 */

#include <hubcache/hubcache.h>
#include <stdio.h>
#include <sys/stat.h>

/* Progress on stderr, once per 10 %, so a long download shows it is alive. */
static void on_progress(const hubcache_progress* event, void* user) {
  int* last_decile = (int*)user;
  uint64_t total = hubcache_progress_total(event);
  int decile;
  if (total == 0) return;
  decile = (int)(hubcache_progress_downloaded(event) * 10 / total);
  if (decile != *last_decile) {
    *last_decile = decile;
    fprintf(stderr, "%s: %d%%\n", hubcache_progress_file(event), decile * 10);
  }
}

int main(int argc, char** argv) {
  const char* repo = argc > 1 ? argv[1] : "Xenova/all-MiniLM-L6-v2";
  const char* file = argc > 2 ? argv[2] : "onnx/model.onnx";
  int last_decile = -1;
  int cached = 0;
  char* local = NULL;
  hubcache_error* error = NULL;
  hubcache_status status;
  struct stat st;

  hubcache_options* options = hubcache_options_new();
  if (options == NULL) {
    fprintf(stderr, "error: out of memory\n");
    return HUBCACHE_ERR_INTERNAL;
  }
  if (argc > 3) hubcache_options_set_revision(options, argv[3]);
  hubcache_options_set_progress(options, on_progress, &last_decile);

  status = hubcache_is_cached(repo, file, options, &cached, &error);
  if (status == HUBCACHE_OK) {
    fprintf(stderr, "%s%s/%s\n", cached ? "cached: " : "not cached yet: ", repo, file);
    status = hubcache_fetch(repo, file, options, &local, &error);
  }
  if (status != HUBCACHE_OK) {
    fprintf(stderr, "error: %s\n", hubcache_error_message(error));
    hubcache_error_free(error);
    hubcache_options_free(options);
    return (int)status;
  }
  /* A real application would now hand `local` to its engine, e.g. OrtCreateSession(env, local, ...). */
  printf("%s\n", local);
  if (stat(local, &st) == 0) printf("%lld bytes\n", (long long)st.st_size);
  hubcache_free(local);
  hubcache_options_free(options);
  return 0;
}
