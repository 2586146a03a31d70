/* hubcache_nif.c: the NIF behind Hubcache.ModelCache, a thin layer over hubcache's C API
 * (hubcache.h). It converts Erlang terms to C strings and option setters, calls the C API,
 * and converts the result back; every decision about the cache is the library's.
 *
 * Every function runs on a dirty I/O scheduler: even the lookups stat files, which can
 * block on a slow or network file system, and fetch may download for minutes. Each call
 * frees everything it allocated on every path (options, strings, error objects).
 *
 * Results: {:ok, value} | {:error, code_atom, status, message}, where code_atom is
 * hubcache_status_name(status) (:not_cached, :repo_not_found...) and status the number
 * (the CLI's exit code). Hubcache.ModelCache turns the error into a Hubcache.Error.
 */
#include <erl_nif.h>
#include <hubcache/hubcache.h>
#include <string.h>

static ERL_NIF_TERM atom_ok, atom_error, atom_nil, atom_true, atom_false;
static ERL_NIF_TERM atom_hubcache_progress, atom_repo, atom_file, atom_downloaded, atom_total, atom_finished;
static ERL_NIF_TERM atom_model, atom_dataset, atom_space, atom_hub, atom_flat;
static ERL_NIF_TERM key_revision, key_repo_type, key_layout, key_cache_dir, key_app_name, key_offline, key_endpoint,
    key_token, key_max_age, key_force, key_connections, key_max_speed, key_progress;

/* Strings converted for one call; all freed by call_free. */
#define MAX_STRINGS 12

/* Where progress messages go: the pid, and the environment of the call for sends from the
 * call's own (dirty scheduler) thread. */
typedef struct {
  ErlNifPid pid;
  ErlNifEnv* caller_env;
} progress_target;

typedef struct {
  ErlNifEnv* env;
  char* strings[MAX_STRINGS];
  int nstrings;
  hubcache_options* options;
  progress_target progress;
  /* Set when the conversion of an argument fails (a static string). */
  const char* invalid;
  int out_of_memory;
} call;

static void call_free(call* c) {
  int i;
  for (i = 0; i < c->nstrings; ++i) enif_free(c->strings[i]);
  c->nstrings = 0;
  hubcache_options_free(c->options);
  c->options = NULL;
}

static ERL_NIF_TERM make_binary(ErlNifEnv* env, const char* s) {
  ERL_NIF_TERM term;
  size_t n = strlen(s);
  unsigned char* data = enif_make_new_binary(env, n, &term);
  memcpy(data, s, n);
  return term;
}

static ERL_NIF_TERM make_error(ErlNifEnv* env, hubcache_status status, const char* message) {
  return enif_make_tuple4(env, atom_error, enif_make_atom(env, hubcache_status_name(status)),
                          enif_make_int(env, (int)status), make_binary(env, message));
}

/* The error of a failed conversion, or of a failed C call (freeing its error object). */
static ERL_NIF_TERM call_error(call* c, hubcache_status status, hubcache_error* error) {
  ERL_NIF_TERM term;
  if (c->out_of_memory)
    term = make_error(c->env, HUBCACHE_ERR_INTERNAL, "out of memory");
  else if (c->invalid)
    term = make_error(c->env, HUBCACHE_ERR_INVALID_ARGUMENT, c->invalid);
  else
    term = make_error(c->env, status, hubcache_error_message(error));
  hubcache_error_free(error);
  call_free(c);
  return term;
}

/* A binary as a NUL-terminated string owned by the call; NULL (and c->invalid set to
 * `what`) when the term is not a binary or holds a NUL byte, which would cut the
 * string short without the caller knowing. */
static const char* get_string(call* c, ERL_NIF_TERM term, const char* what) {
  ErlNifBinary bin;
  char* s;
  if (!enif_inspect_binary(c->env, term, &bin) || memchr(bin.data, 0, bin.size) != NULL) {
    c->invalid = what;
    return NULL;
  }
  if (c->nstrings == MAX_STRINGS || (s = enif_alloc(bin.size + 1)) == NULL) {
    c->out_of_memory = 1;
    return NULL;
  }
  memcpy(s, bin.data, bin.size);
  s[bin.size] = '\0';
  c->strings[c->nstrings++] = s;
  return s;
}

/* Sends {:hubcache_progress, %{repo, file, downloaded, total, finished}} to the pid. Runs
 * on the dirty scheduler thread of the call, or on a worker thread of the library. */
static void on_progress(const hubcache_progress* event, void* user) {
  const progress_target* target = (const progress_target*)user;
  ErlNifEnv* msg_env = enif_alloc_env();
  ERL_NIF_TERM keys[5], values[5], map, message;
  if (msg_env == NULL) return;
  keys[0] = atom_repo, values[0] = make_binary(msg_env, hubcache_progress_repo(event));
  keys[1] = atom_file, values[1] = make_binary(msg_env, hubcache_progress_file(event));
  keys[2] = atom_downloaded, values[2] = enif_make_uint64(msg_env, hubcache_progress_downloaded(event));
  keys[3] = atom_total, values[3] = enif_make_uint64(msg_env, hubcache_progress_total(event));
  keys[4] = atom_finished, values[4] = hubcache_progress_finished(event) ? atom_true : atom_false;
  if (enif_make_map_from_arrays(msg_env, keys, values, 5, &map)) {
    message = enif_make_tuple2(msg_env, atom_hubcache_progress, map);
    /* On the call's scheduler thread enif_send wants the call's environment; on a thread
     * the VM did not start (the library's workers), NULL. */
    enif_send(enif_thread_type() == ERL_NIF_THR_UNDEFINED ? NULL : target->caller_env, &target->pid, msg_env, message);
  }
  enif_free_env(msg_env);
}

static int invalid(call* c, const char* why) {
  c->invalid = why;
  return 0;
}

/* A setter's failure: out of memory, or a value out of range. */
static int setter_failed(call* c, hubcache_status status, const char* why) {
  if (status == HUBCACHE_ERR_INTERNAL) c->out_of_memory = 1;
  return invalid(c, why);
}

/* The value of `key` in the options map, unless absent or nil. */
static int option(call* c, ERL_NIF_TERM map, ERL_NIF_TERM key, ERL_NIF_TERM* value) {
  return enif_get_map_value(c->env, map, key, value) && !enif_is_identical(*value, atom_nil);
}

/* Applies the options map (Hubcache.ModelCache has merged the application config and
 * checked the keys) to a new hubcache_options. 0 on failure, with c->invalid or
 * c->out_of_memory set. */
static int get_options(call* c, ERL_NIF_TERM map) {
  ERL_NIF_TERM v;
  const char* s;
  ErlNifSInt64 i64;
  ErlNifUInt64 u64;
  int i;
  hubcache_options* o;
  hubcache_status status;
  if (!enif_is_map(c->env, map)) return invalid(c, "options must be a keyword list");
  if ((o = c->options = hubcache_options_new()) == NULL) return setter_failed(c, HUBCACHE_ERR_INTERNAL, "");

#define STRING_OPTION(key, setter, what)                                               \
  if (option(c, map, key, &v)) {                                                       \
    if ((s = get_string(c, v, what)) == NULL) return 0;                                \
    if ((status = setter(o, s)) != HUBCACHE_OK) return setter_failed(c, status, what); \
  }
  STRING_OPTION(key_revision, hubcache_options_set_revision, "option :revision must be a string");
  STRING_OPTION(key_cache_dir, hubcache_options_set_cache_dir, "option :cache_dir must be a string");
  STRING_OPTION(key_app_name, hubcache_options_set_app_name,
                "option :app_name must be a non-empty string naming one folder (no '/')");
  STRING_OPTION(key_endpoint, hubcache_options_set_endpoint, "option :endpoint must be a string (a URL)");
  STRING_OPTION(key_token, hubcache_options_set_token, "option :token must be a string");
#undef STRING_OPTION

  if (option(c, map, key_repo_type, &v)) {
    hubcache_repo_type type;
    if (enif_is_identical(v, atom_model))
      type = HUBCACHE_REPO_MODEL;
    else if (enif_is_identical(v, atom_dataset))
      type = HUBCACHE_REPO_DATASET;
    else if (enif_is_identical(v, atom_space))
      type = HUBCACHE_REPO_SPACE;
    else
      return invalid(c, "option :repo_type must be :model, :dataset or :space");
    hubcache_options_set_repo_type(o, type);
  }
  if (option(c, map, key_layout, &v)) {
    if (enif_is_identical(v, atom_hub))
      hubcache_options_set_layout(o, HUBCACHE_LAYOUT_HUB);
    else if (enif_is_identical(v, atom_flat))
      hubcache_options_set_layout(o, HUBCACHE_LAYOUT_FLAT);
    else
      return invalid(c, "option :layout must be :hub or :flat");
  }
  if (option(c, map, key_offline, &v)) {
    if (!enif_is_identical(v, atom_true) && !enif_is_identical(v, atom_false))
      return invalid(c, "option :offline must be true, false or nil (nil: HF_HUB_OFFLINE decides)");
    hubcache_options_set_offline(o, enif_is_identical(v, atom_true));
  }
  if (option(c, map, key_force, &v)) {
    if (!enif_is_identical(v, atom_true) && !enif_is_identical(v, atom_false))
      return invalid(c, "option :force must be true or false");
    hubcache_options_set_force_download(o, enif_is_identical(v, atom_true));
  }
  if (option(c, map, key_max_age, &v)) {
    if (!enif_get_int64(c->env, v, &i64) || i64 < 0)
      return invalid(c, "option :max_age must be a number of seconds (an integer >= 0)");
    hubcache_options_set_max_age(o, (int64_t)i64);
  }
  if (option(c, map, key_connections, &v)) {
    if (!enif_get_int(c->env, v, &i)) return invalid(c, "option :connections must be an integer from 1 to 64");
    if ((status = hubcache_options_set_connections(o, i)) != HUBCACHE_OK)
      return setter_failed(c, status, "option :connections must be an integer from 1 to 64");
  }
  if (option(c, map, key_max_speed, &v)) {
    if (!enif_get_uint64(c->env, v, &u64))
      return invalid(c, "option :max_speed must be bytes per second (an integer >= 0; 0: no cap)");
    hubcache_options_set_max_bytes_per_second(o, (uint64_t)u64);
  }
  if (option(c, map, key_progress, &v)) {
    if (!enif_get_local_pid(c->env, v, &c->progress.pid)) return invalid(c, "option :progress must be a local pid");
    c->progress.caller_env = c->env;
    /* The target lives in the call, which outlives the C call that reports to it. */
    hubcache_options_set_progress(o, on_progress, &c->progress);
  }
  return 1;
}

/* repo, file and options of the one-file calls. */
static int get_file_args(call* c, const ERL_NIF_TERM argv[], const char** repo, const char** file) {
  if ((*repo = get_string(c, argv[0], "the repo must be a string such as \"org/name\"")) == NULL) return 0;
  if ((*file = get_string(c, argv[1], "the file name must be a string such as \"onnx/model.onnx\"")) == NULL) return 0;
  return get_options(c, argv[2]);
}

static ERL_NIF_TERM ok_path(call* c, char* path) {
  ERL_NIF_TERM term = enif_make_tuple2(c->env, atom_ok, make_binary(c->env, path));
  hubcache_free(path);
  call_free(c);
  return term;
}

static ERL_NIF_TERM nif_cache_root(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  call c = {0};
  char* path = NULL;
  hubcache_error* error = NULL;
  hubcache_status status;
  (void)argc;
  c.env = env;
  if (!get_options(&c, argv[0])) return call_error(&c, HUBCACHE_ERR_INVALID_ARGUMENT, NULL);
  status = hubcache_cache_root(c.options, &path, &error);
  if (status != HUBCACHE_OK) return call_error(&c, status, error);
  return ok_path(&c, path);
}

static ERL_NIF_TERM nif_is_cached(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  call c = {0};
  const char *repo, *file;
  int cached = 0;
  hubcache_error* error = NULL;
  hubcache_status status;
  (void)argc;
  c.env = env;
  if (!get_file_args(&c, argv, &repo, &file)) return call_error(&c, HUBCACHE_ERR_INVALID_ARGUMENT, NULL);
  status = hubcache_is_cached(repo, file, c.options, &cached, &error);
  if (status != HUBCACHE_OK) return call_error(&c, status, error);
  call_free(&c);
  return enif_make_tuple2(env, atom_ok, cached ? atom_true : atom_false);
}

static ERL_NIF_TERM nif_path(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  call c = {0};
  const char *repo, *file;
  char* path = NULL;
  hubcache_error* error = NULL;
  hubcache_status status;
  (void)argc;
  c.env = env;
  if (!get_file_args(&c, argv, &repo, &file)) return call_error(&c, HUBCACHE_ERR_INVALID_ARGUMENT, NULL);
  status = hubcache_path(repo, file, c.options, &path, &error);
  if (status != HUBCACHE_OK) return call_error(&c, status, error);
  return ok_path(&c, path);
}

static ERL_NIF_TERM nif_fetch(ErlNifEnv* env, int argc, const ERL_NIF_TERM argv[]) {
  call c = {0};
  const char *repo, *file;
  char* path = NULL;
  hubcache_error* error = NULL;
  hubcache_status status;
  (void)argc;
  c.env = env;
  if (!get_file_args(&c, argv, &repo, &file)) return call_error(&c, HUBCACHE_ERR_INVALID_ARGUMENT, NULL);
  status = hubcache_fetch(repo, file, c.options, &path, &error);
  if (status != HUBCACHE_OK) return call_error(&c, status, error);
  return ok_path(&c, path);
}

static int load(ErlNifEnv* env, void** priv_data, ERL_NIF_TERM load_info) {
  (void)priv_data, (void)load_info;
  /* A libhubcache older than the header this NIF was built with lacks functions it uses. */
  if (hubcache_api_version() < HUBCACHE_API_VERSION) return 1;
  atom_ok = enif_make_atom(env, "ok");
  atom_error = enif_make_atom(env, "error");
  atom_nil = enif_make_atom(env, "nil");
  atom_true = enif_make_atom(env, "true");
  atom_false = enif_make_atom(env, "false");
  atom_hubcache_progress = enif_make_atom(env, "hubcache_progress");
  atom_repo = enif_make_atom(env, "repo");
  atom_file = enif_make_atom(env, "file");
  atom_downloaded = enif_make_atom(env, "downloaded");
  atom_total = enif_make_atom(env, "total");
  atom_finished = enif_make_atom(env, "finished");
  atom_model = enif_make_atom(env, "model");
  atom_dataset = enif_make_atom(env, "dataset");
  atom_space = enif_make_atom(env, "space");
  atom_hub = enif_make_atom(env, "hub");
  atom_flat = enif_make_atom(env, "flat");
  key_revision = enif_make_atom(env, "revision");
  key_repo_type = enif_make_atom(env, "repo_type");
  key_layout = enif_make_atom(env, "layout");
  key_cache_dir = enif_make_atom(env, "cache_dir");
  key_app_name = enif_make_atom(env, "app_name");
  key_offline = enif_make_atom(env, "offline");
  key_endpoint = enif_make_atom(env, "endpoint");
  key_token = enif_make_atom(env, "token");
  key_max_age = enif_make_atom(env, "max_age");
  key_force = enif_make_atom(env, "force");
  key_connections = enif_make_atom(env, "connections");
  key_max_speed = enif_make_atom(env, "max_speed");
  key_progress = enif_make_atom(env, "progress");
  return 0;
}

static ErlNifFunc functions[] = {
    {"cache_root", 1, nif_cache_root, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"cached", 3, nif_is_cached, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"path", 3, nif_path, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"fetch", 3, nif_fetch, ERL_NIF_DIRTY_JOB_IO_BOUND},
};

ERL_NIF_INIT(Elixir.Hubcache.Nif, functions, load, NULL, NULL, NULL)
