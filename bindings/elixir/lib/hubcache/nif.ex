defmodule Hubcache.Nif do
  # The NIF (c_src/hubcache_nif.c), built into priv/ by the :hubcache_nif compiler of
  # mix.exs. Every function runs on a dirty I/O scheduler.
  @moduledoc false
  @on_load :load

  def load do
    path = :filename.join(:code.priv_dir(:hubcache), ~c"hubcache_nif")
    :erlang.load_nif(path, 0)
  end

  def cache_root(_options), do: :erlang.nif_error(:nif_not_loaded)
  def cached(_repo, _file, _options), do: :erlang.nif_error(:nif_not_loaded)
  def path(_repo, _file, _options), do: :erlang.nif_error(:nif_not_loaded)
  def fetch(_repo, _file, _options), do: :erlang.nif_error(:nif_not_loaded)
end
