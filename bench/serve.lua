-- wrk script for bench/serve.sh: exact totals at the end, and 1 MiB range requests
-- spread over the file when RANGE_CHUNKS (the file's size in MiB) is set.
local chunks = tonumber(os.getenv("RANGE_CHUNKS") or "0")
local counter = 0

request = function()
  if chunks == 0 then
    return wrk.format(nil, nil)
  end
  counter = counter + 1
  local i = (counter * 7919 + math.random(0, chunks - 1)) % chunks
  return wrk.format(nil, nil, {["Range"] = "bytes=" .. i * 1048576 .. "-" .. ((i + 1) * 1048576 - 1)})
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status +
                 summary.errors.timeout
  io.write(string.format("RESULT requests %d bytes %d seconds %.3f errors %d p50_ms %.2f p99_ms %.2f\n",
    summary.requests, summary.bytes, summary.duration / 1e6, errors,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
