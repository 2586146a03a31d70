defmodule Hubcache.ModelCache do
  @moduledoc """
  On-disk cache for model files (ONNX weights, configs, tokenizers...) downloaded from
  the Hugging Face Hub. Files are downloaded once, verified against the Hub's hash, and
  reused for the lifetime of the cache directory; a download never leaves a partial file
  where a complete one is expected.

  The work is done by the hubcache C library (through a NIF on dirty I/O schedulers), so
  the default cache is the Hugging Face hub cache, shared with Python `huggingface_hub`,
  the `hf` CLI and the `hubcache` command: a model any of them downloaded is not
  downloaded again.

  ## Cache directory

  The cache root is resolved in this order:

    * `Application.get_env(:hubcache, :cache_dir)`, if set;
    * otherwise the environment, as huggingface_hub reads it: `HF_HUB_CACHE`,
      `HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`, `$XDG_CACHE_HOME/huggingface/hub`,
      `~/.cache/huggingface/hub`; with `layout: :flat`, `$XDG_CACHE_HOME/<app_name>`
      (else `~/.cache/<app_name>`), like `:filename.basedir(:user_cache, app_name)`.

  Configure it explicitly in `config/runtime.exs`:

      config :hubcache, :cache_dir, "/var/lib/my_app/models"

  ## Layout

    * `:hub` (the default): the Hugging Face cache,
      `{cache_root}/models--{org}--{name}/snapshots/{commit}/{filename}`, with revisions.
    * `:flat`: `{cache_root}/{repo}/{filename}`, preserving the repository hierarchy,
      e.g. `{cache_root}/facebook/sam2.1-hiera-tiny/sam2.1_hiera_tiny.encoder.onnx`. A
      folder pre-populated in this layout for an application's own model cache works
      unchanged:

          config :hubcache, layout: :flat, cache_dir: "/var/lib/image_vision"

  ## Offline use

  Set `HF_HUB_OFFLINE=1` (or pass `offline: true`): nothing is sent, cached files are
  returned, a miss is an error with code `:not_cached`. Pre-populate the cache (with
  `hubcache download`, `hf download`, or by hand in the flat layout) to run fully
  offline. `cached?/2` reports whether a file is present without a download.

  ## Options

  Every function takes the same options, as a keyword list; the application config
  (`config :hubcache, key: value`) gives defaults for all but `:progress`:

    * `:revision` - branch, tag, `"refs/pr/N"` or commit (default `"main"`)
    * `:repo_type` - `:model` (default), `:dataset` or `:space`
    * `:layout` - `:hub` (default) or `:flat`
    * `:cache_dir` - the cache root (default: see above)
    * `:app_name` - the folder of a `:flat` cache under the user cache folder
      (default `"hubcache"`)
    * `:offline` - `true`, `false`, or `nil` (default: `HF_HUB_OFFLINE` decides)
    * `:endpoint` - Hub URL (default: `HF_ENDPOINT`, else `https://huggingface.co`)
    * `:token` - access token (default: `HF_TOKEN`, then the token file; `""`: none).
      Never logged, never in an error message.
    * `:max_age` - trust a branch's known commit for this many seconds (a hit then sends
      no request; default: ask the Hub once per fetch of a branch)
    * `:force` - download even when cached (default `false`)
    * `:connections` - connections for one large file, 1 to 64 (default 8)
    * `:max_speed` - bandwidth cap in bytes per second (default 0, none)
    * `:progress` - a pid that receives
      `{:hubcache_progress, %{repo: r, file: f, downloaded: bytes, total: bytes, finished: bool}}`
      a few times per second while a file downloads (nothing on a hit)

  Errors are `Hubcache.Error` structs; `fetch/3` returns them, the other functions raise
  them.

  ## Environment variables

  The library reads `HF_*` variables from the operating-system environment of the VM, once,
  on first use. `System.put_env/2` does not reach it (the VM keeps its own copy), so set
  them before the VM starts, or use the config and options above.
  """

  alias Hubcache.{Error, Nif}

  @config_keys [
    :revision,
    :repo_type,
    :layout,
    :cache_dir,
    :app_name,
    :offline,
    :endpoint,
    :token,
    :max_age,
    :force,
    :connections,
    :max_speed
  ]
  @option_keys [:progress | @config_keys]

  @typedoc "A HuggingFace repository, e.g. `\"facebook/sam2.1-hiera-tiny\"`."
  @type repo :: String.t()
  @typedoc "A path within the repository, e.g. `\"onnx/encoder.onnx\"`."
  @type filename :: String.t()

  @doc """
  Returns the absolute path to the cache root directory, creating it if it does not yet
  exist.

  ## Returns

    * The absolute path as a binary. Raises `Hubcache.Error` (code `:io`) when the
      directory cannot be created.
  """
  @spec cache_root() :: Path.t()
  def cache_root do
    unwrap!(with({:ok, options} <- options([]), do: result(Nif.cache_root(options))))
  end

  @doc """
  Returns true if the given HuggingFace file is already present in the local cache.

  No network and no writes: the cache's refs are read and the file is `stat`ed.

  ## Arguments

    * `repo` is the HuggingFace repository.
    * `filename` is the path within the repository.
    * `opts` are the options above (`:revision`, `:layout`...).

  ## Returns

    * A boolean. Raises `Hubcache.Error` (code `:invalid_argument`) for a malformed repo
      id or a file name that would leave the repository folder.
  """
  @spec cached?(repo(), filename(), keyword()) :: boolean()
  def cached?(repo, filename, opts \\ []) do
    unwrap!(call(:cached, repo, filename, opts))
  end

  @doc """
  Returns the local path that a given HuggingFace file would be cached at, without
  checking whether it exists or downloading it.

  No network and no writes. In the `:hub` layout the path contains the commit of the
  revision, so a branch must have been fetched once: otherwise this raises
  `Hubcache.Error` with code `:not_cached`.

  ## Arguments

    * `repo` is the HuggingFace repository.
    * `filename` is the path within the repository.
    * `opts` are the options above.

  ## Returns

    * The absolute local path as a binary.
  """
  @spec path(repo(), filename(), keyword()) :: Path.t()
  def path(repo, filename, opts \\ []) do
    unwrap!(call(:path, repo, filename, opts))
  end

  @doc """
  Returns the local path for a HuggingFace model file, downloading it on cache miss.

  ## Arguments

    * `repo` is the HuggingFace repository, e.g. `"facebook/sam2.1-hiera-tiny"`.
    * `filename` is the path within the repository, e.g.
      `"sam2.1_hiera_tiny.encoder.onnx"`. Sub-directories are supported
      (`"onnx/encoder.onnx"`).
    * `opts` are the options above.

  ## Returns

    * The absolute local path to the file as a binary.

  Raises `Hubcache.Error` if the download fails.

  ## Examples

      iex> path = Hubcache.ModelCache.fetch!("facebook/sam2.1-hiera-tiny", "config.json")
      iex> File.exists?(path)
      true
  """
  @spec fetch!(repo(), filename(), keyword()) :: Path.t()
  def fetch!(repo, filename, opts \\ []) do
    unwrap!(fetch(repo, filename, opts))
  end

  @doc """
  Like `fetch!/3`, but returns `{:ok, path}` or `{:error, %Hubcache.Error{}}`.

  Concurrent fetches of the same file, from any number of Elixir processes or OS
  processes, download it once; the others wait for it and return the same path.
  """
  @spec fetch(repo(), filename(), keyword()) :: {:ok, Path.t()} | {:error, Error.t()}
  def fetch(repo, filename, opts \\ []) do
    call(:fetch, repo, filename, opts)
  end

  defp call(function, repo, filename, opts) do
    with {:ok, options} <- options(opts) do
      result(apply(Nif, function, [repo, filename, options]))
    end
  end

  # The application config, then the call's options, as the map the NIF reads.
  defp options(opts) do
    if Keyword.keyword?(opts) do
      case Keyword.keys(opts) -- @option_keys do
        [] ->
          config = Keyword.take(Application.get_all_env(:hubcache), @config_keys)
          {:ok, Map.new(Keyword.merge(config, opts))}

        unknown ->
          invalid("unknown option #{inspect(unknown)}; the options are #{inspect(@option_keys)}")
      end
    else
      invalid("options must be a keyword list, got: #{inspect(opts)}")
    end
  end

  defp invalid(message),
    do: {:error, %Error{code: :invalid_argument, status: 2, message: message}}

  defp result({:ok, value}), do: {:ok, value}

  defp result({:error, code, status, message}),
    do: {:error, %Error{code: code, status: status, message: message}}

  defp unwrap!({:ok, value}), do: value
  defp unwrap!({:error, %Error{} = error}), do: raise(error)
end
