# The hubcache binding for Elixir: Hubcache.ModelCache, a thin layer over hubcache's C
# API (hubcache.h) through a NIF. No dependencies: the NIF is built by the compiler
# defined below, against an installed libhubcache (pkg-config hubcache) or the one that
# HUBCACHE_CFLAGS / HUBCACHE_LIBS point at (the test suite uses a build tree that way).
defmodule Mix.Tasks.Compile.HubcacheNif do
  use Mix.Task.Compiler

  @shortdoc "Compiles the hubcache NIF (c_src/) into priv/"
  @moduledoc """
  Compiles `c_src/hubcache_nif.c` into `priv/hubcache_nif.so` of the application's
  build folder, when the source or `hubcache.h` is newer than the library.

  Environment:

    * `HUBCACHE_CFLAGS`, `HUBCACHE_LIBS`: compiler and linker flags for libhubcache,
      instead of `pkg-config --cflags --libs hubcache` (add `-Wl,-rpath,DIR` to
      `HUBCACHE_LIBS` when the library is not where the dynamic loader looks).
    * `HUBCACHE_NIF_CFLAGS`: extra compiler flags (the tests add `-Werror`).
    * `CC`: the C compiler (default `cc`).
  """

  @impl true
  def run(_args) do
    priv = Path.join(Mix.Project.app_path(), "priv")
    target = Path.join(priv, "hubcache_nif.so")
    source = "c_src/hubcache_nif.c"
    {cflags, libs} = hubcache_flags()
    header = find_header(cflags)

    if Mix.Utils.stale?(Enum.reject([source, "mix.exs", header], &is_nil/1), [target]) do
      File.mkdir_p!(priv)

      args =
        ["-std=c99", "-O2", "-fPIC", "-shared", "-fvisibility=hidden", "-Wall", "-Wextra"] ++
          split(System.get_env("HUBCACHE_NIF_CFLAGS", "")) ++
          ["-I", erts_include()] ++ cflags ++ [source, "-o", target] ++ libs

      cc = System.get_env("CC", "cc")
      Mix.shell().info("Compiling the hubcache NIF: #{cc} #{Enum.join(args, " ")}")

      case System.cmd(cc, args, stderr_to_stdout: true) do
        {out, 0} ->
          if out != "", do: Mix.shell().info(out)
          {:ok, []}

        {out, status} ->
          Mix.raise("compiling #{source} failed (#{cc} exited with #{status}):\n#{out}")
      end
    else
      {:noop, []}
    end
  end

  defp hubcache_flags do
    case {System.get_env("HUBCACHE_CFLAGS"), System.get_env("HUBCACHE_LIBS")} do
      {nil, nil} ->
        cflags = pkg_config(["--cflags", "hubcache"])
        libs = pkg_config(["--libs", "hubcache"])
        # The loader must find libhubcache.so.0 wherever it was installed.
        [libdir] = pkg_config(["--variable=libdir", "hubcache"])
        {cflags, libs ++ ["-Wl,-rpath,#{libdir}"]}

      {cflags, libs} ->
        {split(cflags || ""), split(libs || "")}
    end
  end

  defp pkg_config(args) do
    case System.find_executable("pkg-config") &&
           System.cmd("pkg-config", args, stderr_to_stdout: true) do
      {out, 0} ->
        split(out)

      other ->
        detail = if other, do: elem(other, 0), else: "pkg-config is not installed\n"

        Mix.raise(
          "libhubcache not found: #{String.trim(detail)}\n" <>
            "Install hubcache (cmake --install build) so that `pkg-config hubcache` finds it, " <>
            "or set HUBCACHE_CFLAGS and HUBCACHE_LIBS."
        )
    end
  end

  defp find_header(cflags) do
    cflags
    |> Enum.filter(&String.starts_with?(&1, "-I"))
    |> Enum.map(&Path.join(String.replace_prefix(&1, "-I", ""), "hubcache/hubcache.h"))
    |> Enum.find(&File.exists?/1)
  end

  defp erts_include do
    Path.join([:code.root_dir(), "erts-#{:erlang.system_info(:version)}", "include"])
  end

  defp split(flags), do: String.split(flags, ~r/\s+/, trim: true)
end

defmodule Hubcache.MixProject do
  use Mix.Project

  def project do
    [
      app: :hubcache,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:hubcache_nif] ++ Mix.compilers(),
      start_permanent: Mix.env() == :prod,
      deps: [],
      description:
        "A cache of Hugging Face Hub files shared with huggingface_hub, via the hubcache C library"
    ]
  end

  def application, do: []
end
