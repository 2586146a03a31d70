defmodule Hubcache.ModelCacheTest do
  # Not async: the tests change the :hubcache application config, and one of them the
  # number of schedulers online.
  use ExUnit.Case, async: false

  alias Hubcache.{Error, ModelCache, TestServer}
  import TestServer, only: [requests_during: 1]

  @repo "org/tiny"
  @onnx "onnx/model.onnx"

  setup do
    dir = Path.join(TestServer.info().root, "case-#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    for {key, _} <- Application.get_all_env(:hubcache), do: Application.delete_env(:hubcache, key)
    %{dir: dir, commit: TestServer.info().commit}
  end

  defp downloads(lines), do: Enum.count(lines, &String.starts_with?(&1, "cdn GET "))

  # Runs Elixir code in a new VM with this project's code and `env`; its stdout lines.
  defp elixir!(code, env) do
    ebin = :code.which(ModelCache) |> Path.dirname()

    {out, status} =
      System.cmd(System.find_executable("elixir"), ["-pa", ebin, "-e", code], env: env)

    assert status == 0, out
    String.split(out, "\n", trim: true)
  end

  test "a miss downloads; then hits, even with HF_HUB_OFFLINE=1 in another VM, send nothing",
       %{dir: dir, commit: commit} do
    Application.put_env(:hubcache, :cache_dir, dir)
    refute ModelCache.cached?(@repo, @onnx)

    {lines, path} = requests_during(fn -> ModelCache.fetch!(@repo, @onnx) end)
    assert path == Path.join([dir, "models--org--tiny", "snapshots", commit, @onnx])
    assert TestServer.sha256(File.read!(path)) == TestServer.info().big_sha
    assert downloads(lines) == 1, inspect(lines)
    assert ModelCache.cached?(@repo, @onnx)
    assert ModelCache.path(@repo, @onnx) == path
    assert ModelCache.cache_root() == dir

    code = """
    Application.put_env(:hubcache, :cache_dir, System.fetch_env!("T_DIR"))
    IO.puts(Hubcache.ModelCache.fetch!("org/tiny", "onnx/model.onnx"))
    IO.puts(Hubcache.ModelCache.cached?("org/tiny", "onnx/model.onnx"))
    {:error, %Hubcache.Error{code: code, status: status}} = Hubcache.ModelCache.fetch("org/tiny", "config.json")
    IO.puts("\#{code} \#{status}")
    """

    env = [{"HF_HUB_OFFLINE", "1"}, {"T_DIR", dir}]
    {lines, out} = requests_during(fn -> elixir!(code, env) end)
    assert out == [path, "true", "not_cached 3"]
    assert lines == []

    # In this VM: offline: true, and a hit at the commit, send nothing either.
    {lines, _} =
      requests_during(fn ->
        assert ModelCache.fetch(@repo, @onnx, offline: true) == {:ok, path}
        assert ModelCache.fetch!(@repo, @onnx, revision: commit) == path
      end)

    assert lines == []
  end

  test "cached?/2 and path/2 never send a request", %{dir: dir, commit: commit} do
    Application.put_env(:hubcache, :cache_dir, dir)
    config = ModelCache.fetch!(@repo, "config.json")

    {lines, _} =
      requests_during(fn ->
        for _ <- 1..10 do
          assert ModelCache.cached?(@repo, "config.json")
          refute ModelCache.cached?(@repo, @onnx)
          refute ModelCache.cached?("org/other", "config.json")
          assert ModelCache.cached?(@repo, "config.json", revision: commit)
          assert ModelCache.path(@repo, "config.json") == config
          # Not downloaded, but where it would be is known: the commit of main is.
          assert ModelCache.path(@repo, @onnx) == Path.join(Path.dirname(config), @onnx)
          assert ModelCache.path("org/other", "a.onnx", revision: commit) =~ "models--org--other"
        end
      end)

    assert lines == []
  end

  test "the flat layout reads a folder pre-populated for an application's own model cache",
       %{dir: dir} do
    # {cache_root}/{repo}/{filename}, as the seed's ImageVision.ModelCache lays it out.
    repo = "facebook/sam2.1-hiera-tiny"
    file = "sam2.1_hiera_tiny.encoder.onnx"
    flat = Path.join(dir, "image_vision")
    File.mkdir_p!(Path.join(flat, repo))
    File.write!(Path.join([flat, repo, file]), "weights put there by hand")
    Application.put_env(:hubcache, :layout, :flat)
    Application.put_env(:hubcache, :cache_dir, flat)

    {lines, _} =
      requests_during(fn ->
        assert ModelCache.cache_root() == flat
        assert ModelCache.cached?(repo, file)
        assert ModelCache.path(repo, file) == Path.join([flat, repo, file])
        assert ModelCache.fetch!(repo, file) == Path.join([flat, repo, file])
        refute ModelCache.cached?(repo, "decoder.onnx")

        assert ModelCache.path(repo, "onnx/decoder.onnx") ==
                 Path.join([flat, repo, "onnx/decoder.onnx"])
      end)

    assert lines == []
    assert File.read!(Path.join([flat, repo, file])) == "weights put there by hand"

    # A miss downloads into the same layout; sub-directories are supported.
    {lines, path} = requests_during(fn -> ModelCache.fetch!(@repo, @onnx) end)
    assert path == Path.join([flat, @repo, @onnx])
    assert TestServer.sha256(File.read!(path)) == TestServer.info().big_sha
    assert downloads(lines) == 1

    # With no cache_dir, the root is the seed's :filename.basedir(:user_cache, app_name).
    code = """
    Application.put_env(:hubcache, :layout, :flat)
    Application.put_env(:hubcache, :app_name, "image_vision")
    IO.puts(Hubcache.ModelCache.cache_root())
    IO.puts(:filename.basedir(:user_cache, "image_vision"))
    """

    xdg = Path.join(dir, "xdg")
    assert [root, seed_root] = elixir!(code, [{"XDG_CACHE_HOME", xdg}])
    assert root == Path.join(xdg, "image_vision")
    assert root == seed_root
    assert File.dir?(root)
  end

  test "every error path returns (fetch/3) or raises (the others) a Hubcache.Error",
       %{dir: dir} do
    Application.put_env(:hubcache, :cache_dir, dir)
    File.write!(Path.join(dir, "a-file"), "x")
    under_a_file = Path.join([dir, "a-file", "cache"])

    cases = [
      {"../evil", "config.json", [], :invalid_argument, "../evil"},
      {@repo, "../../etc/passwd", [], :invalid_argument, "../../etc/passwd"},
      {@repo, "config\0.json", [], :invalid_argument, "file name"},
      {:not_a_string, "config.json", [], :invalid_argument, "repo"},
      {@repo, "config.json", [layout: :sideways], :invalid_argument, ":layout"},
      {@repo, "config.json", [bogus: 1], :invalid_argument, "unknown option [:bogus]"},
      {@repo, "config.json", [connections: 0], :invalid_argument, ":connections"},
      {@repo, "config.json", [progress: :me], :invalid_argument, ":progress"},
      {@repo, "config.json", [offline: "yes"], :invalid_argument, ":offline"},
      {"org/nope", "config.json", [], :repo_not_found, "org/nope"},
      {@repo, "config.json", [revision: "no-such-branch"], :revision_not_found, "no-such-branch"},
      {@repo, "nope.bin", [], :entry_not_found, "nope.bin"},
      {@repo, "onnx/corrupt.onnx", [], :integrity, "onnx/corrupt.onnx"},
      {@repo, "config.json", [offline: true], :not_cached, "'config.json' of model 'org/tiny'"},
      {@repo, "config.json", [endpoint: "http://127.0.0.1:9"], :not_cached,
       "Cannot reach the Hub at http://127.0.0.1:9"},
      {@repo, "config.json", [cache_dir: under_a_file], :io, "a-file"}
    ]

    statuses = %{
      invalid_argument: 2,
      not_cached: 3,
      repo_not_found: 4,
      revision_not_found: 6,
      entry_not_found: 7,
      integrity: 8,
      network: 9,
      io: 11
    }

    for {repo, file, opts, code, needle} <- cases do
      assert {:error, %Error{code: ^code, status: status, message: message}} =
               ModelCache.fetch(repo, file, opts)

      assert status == statuses[code]
      assert message =~ needle, "#{code}: #{message}"
      error = assert_raise Error, fn -> ModelCache.fetch!(repo, file, opts) end
      assert error.code == code
    end

    refute ModelCache.cached?(@repo, "onnx/corrupt.onnx"), "bad bytes never enter the cache"
    refute File.exists?(under_a_file)

    # A token is never part of a message.
    assert {:error, %Error{message: message}} =
             ModelCache.fetch("org/nope", "config.json", token: "hf_secret_never_shown")

    refute message =~ "hf_secret_never_shown"

    assert_raise Error, ~r/\.\.\/evil/, fn -> ModelCache.cached?("../evil", "a") end
    assert_raise Error, ~r/unknown option/, fn -> ModelCache.path(@repo, "a", nope: 1) end
    # A branch whose commit the cache has not recorded yet: its path cannot be known.
    empty = Path.join(dir, "empty")

    assert %Error{code: :not_cached, status: 3, message: message} =
             catch_error(ModelCache.path(@repo, "config.json", cache_dir: empty))

    assert message =~ "refs/main"

    assert {:error, %Error{code: :invalid_argument}} =
             ModelCache.fetch(@repo, "config.json", "not a keyword list")

    Application.put_env(:hubcache, :cache_dir, under_a_file)
    assert %Error{code: :io, status: 11} = catch_error(ModelCache.cache_root())
  end

  test "8 processes fetching the same file at once get it with one download", %{dir: dir} do
    {lines, results} =
      requests_during(fn ->
        1..8
        |> Enum.map(fn _ -> Task.async(fn -> ModelCache.fetch(@repo, @onnx, cache_dir: dir) end) end)
        |> Task.await_many(60_000)
      end)

    assert [{:ok, path}] = Enum.uniq(results)
    assert TestServer.sha256(File.read!(path)) == TestServer.info().big_sha
    assert downloads(lines) == 1, inspect(lines)
  end

  test "progress: pid receives messages as the file downloads, none on a hit", %{dir: dir} do
    size = TestServer.info().big_size
    {:ok, _} = ModelCache.fetch(@repo, @onnx, cache_dir: dir, progress: self())

    assert_received {:hubcache_progress,
                     %{repo: @repo, file: @onnx, downloaded: ^size, total: ^size, finished: true}}

    flush()
    {:ok, _} = ModelCache.fetch(@repo, @onnx, cache_dir: dir, progress: self())
    refute_received {:hubcache_progress, _}
  end

  test "a download runs on a dirty scheduler: the normal one stays free", %{dir: dir} do
    # One normal scheduler. A NIF blocking it would hold every other process until the
    # download ends; here another process answers while the download still runs.
    previous = :erlang.system_flag(:schedulers_online, 1)

    try do
      me = self()

      task =
        Task.async(fn ->
          # About 2 s at 1.5 MB/s.
          ModelCache.fetch(@repo, @onnx, cache_dir: dir, progress: me, max_speed: 1_500_000)
        end)

      assert_receive {:hubcache_progress, %{finished: false}}, 30_000
      pong = spawn(fn -> receive do: ({:ping, from} -> send(from, :pong)) end)
      send(pong, {:ping, me})
      assert_receive :pong, 30_000
      assert Task.yield(task, 0) == nil, "the normal scheduler was blocked until the download ended"
      assert {:ok, _} = Task.await(task, 60_000)
    after
      :erlang.system_flag(:schedulers_online, previous)
    end
  end

  defp flush do
    receive do
      _ -> flush()
    after
      0 -> :ok
    end
  end
end
