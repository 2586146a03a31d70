# The tests run against a real `hubcache serve` over an imported repo, reached through
# HF_ENDPOINT as an application next to a mirror would reach it. tests/scripts/elixir_test.sh
# (run by ctest) prepares it and sets the environment before this VM starts: hubcache reads
# its environment variables from the C environment, which System.put_env does not change.
defmodule Hubcache.TestServer do
  @moduledoc false

  def setup! do
    fixture =
      System.get_env("HUBCACHE_TEST_FIXTURE") ||
        raise "run these tests with tests/scripts/elixir_test.sh (or ctest -R elixir): it starts the server"

    big = File.read!(Path.join(fixture, "model/onnx/model.onnx"))
    root = Path.join(fixture, "cases")
    File.mkdir_p!(root)

    :persistent_term.put(__MODULE__, %{
      url: System.fetch_env!("HF_ENDPOINT"),
      log: Path.join(fixture, "serve.log"),
      commit: System.fetch_env!("HUBCACHE_TEST_COMMIT"),
      big_sha: sha256(big),
      big_size: byte_size(big),
      root: root,
      marks: :counters.new(1, [])
    })
  end

  def info, do: :persistent_term.get(__MODULE__)

  def sha256(data), do: :crypto.hash(:sha256, data) |> Base.encode16(case: :lower)

  # The access-log lines of the requests `fun` made (one line per request, "hub GET /...",
  # "cdn GET /<sha256>..."), and fun's result. A marker request before and after delimits
  # them: the server logs a request after answering it, so the test waits for the marker.
  def requests_during(fun) do
    before = mark!()
    result = fun.()
    after_mark = mark!()
    lines = log_lines()
    from = Enum.find_index(lines, &String.contains?(&1, before)) + 1
    to = Enum.find_index(lines, &String.contains?(&1, after_mark))
    {Enum.slice(lines, from, to - from), result}
  end

  defp mark! do
    %{url: url, marks: marks} = info()
    :counters.add(marks, 1, 1)
    name = "/hubcache-test-mark-#{:counters.get(marks, 1)}"
    %URI{host: host, port: port} = URI.parse(url)
    {:ok, socket} = :gen_tcp.connect(String.to_charlist(host), port, [:binary, active: false])

    :ok =
      :gen_tcp.send(socket, "GET #{name} HTTP/1.1\r\nHost: #{host}\r\nConnection: close\r\n\r\n")

    drain(socket)
    wait_for_log_line(name, 500)
    name
  end

  defp drain(socket) do
    case :gen_tcp.recv(socket, 0, 10_000) do
      {:ok, _} -> drain(socket)
      {:error, _} -> :gen_tcp.close(socket)
    end
  end

  defp wait_for_log_line(needle, tries) do
    cond do
      Enum.any?(log_lines(), &String.contains?(&1, needle)) ->
        :ok

      tries == 0 ->
        raise "the server never logged #{needle}"

      true ->
        Process.sleep(20)
        wait_for_log_line(needle, tries - 1)
    end
  end

  defp log_lines, do: info().log |> File.read!() |> String.split("\n", trim: true)
end

Hubcache.TestServer.setup!()
ExUnit.start()
