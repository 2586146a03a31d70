// The peer side of bench/run.sh: @huggingface/hub (the version pinned in
// tests/interop/package-lock.json), and the generator of the benchmark's data.
//
//   node peer.mjs snapshot HUB_URL REPO CACHE_DIR             snapshotDownload; prints the folder
//   node peer.mjs file HUB_URL REPO PATH REVISION CACHE_DIR   downloadFileToCacheDir; prints the path
//   node peer.mjs file-loop HUB_URL REPO PATH REVISION CACHE_DIR N
//                                                             N calls in one process; prints ns per call
//   node peer.mjs scan CACHE_DIR                              scanCacheDir; prints repos, files, bytes
//   node peer.mjs gen DIR COUNT MIN_BYTES MAX_BYTES SEED [flat]
//                                                             COUNT files of pseudo-random bytes in
//                                                             DIR/dNN/fNNNNN.txt, or DIR/fNNNNN.txt with
//                                                             "flat" (same SEED, same files)
//   node peer.mjs gen-repos DIR REPOS COUNT MIN_BYTES MAX_BYTES SEED
//                                                             REPOS flat folders DIR/<i>/ of COUNT files each
//   node peer.mjs free-port                                   prints a free TCP port on 127.0.0.1
//
// Repos are "org/name" (models). Exit code 1 with the error on failure.
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

const [command, ...args] = process.argv.slice(2);

// The JS client logs every download with console.debug on stdout; the benchmark
// reads only the last line, and a terminal must not slow the client down.
console.debug = () => {};

async function hub() {
  return import("@huggingface/hub");
}

// xorshift64*: fast, seeded, so two runs generate the same bytes.
function generator(seed) {
  let s = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
  const mask = (1n << 64n) - 1n;
  return () => {
    s ^= s >> 12n;
    s ^= (s << 25n) & mask;
    s ^= s >> 27n;
    return Number(((s * 0x2545f4914f6cdd1dn) & mask) >> 32n);
  };
}

function generate(dir, count, min, max, seed, flat) {
  const next = generator(seed);
  for (let i = 0; i < count; ++i) {
    const size = min + (next() % (max - min + 1));
    const buf = Buffer.allocUnsafe(size);
    for (let j = 0; j + 4 <= size; j += 4) buf.writeUInt32LE(next() >>> 0, j);
    for (let j = size - (size % 4); j < size; ++j) buf[j] = next() & 255;
    const sub = flat ? dir : join(dir, `d${String(i % 10).padStart(2, "0")}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${String(i).padStart(5, "0")}.txt`), buf);
  }
}

try {
  if (command === "snapshot") {
    const [hubUrl, repo, cacheDir] = args;
    const { snapshotDownload } = await hub();
    console.log(await snapshotDownload({ repo: { type: "model", name: repo }, cacheDir, hubUrl }));
  } else if (command === "file" || command === "file-loop") {
    const [hubUrl, repo, path, revision, cacheDir, n] = args;
    const { downloadFileToCacheDir } = await hub();
    const params = { repo: { type: "model", name: repo }, path, revision, cacheDir, hubUrl };
    if (command === "file") {
      console.log(await downloadFileToCacheDir(params));
    } else {
      const count = Number(n);
      for (let i = 0; i < Math.min(100, count); ++i) await downloadFileToCacheDir(params);  // warm-up
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < count; ++i) await downloadFileToCacheDir(params);
      const ns = Number(process.hrtime.bigint() - t0) / count;
      console.log(JSON.stringify({ calls: count, ns_per_call: ns }));
    }
  } else if (command === "scan") {
    const [cacheDir] = args;
    const { scanCacheDir } = await hub();
    const t0 = process.hrtime.bigint();
    const info = await scanCacheDir(cacheDir);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const files = info.repos.reduce((n, r) => n + r.filesCount, 0);
    console.log(JSON.stringify({ repos: info.repos.length, files, size: info.size, warnings: info.warnings.length, scan_ms: ms }));
  } else if (command === "gen") {
    const [dir, count, min, max, seed] = args.slice(0, 5).map((a, i) => (i === 0 ? a : Number(a)));
    generate(dir, count, min, max, seed, args[5] === "flat");
  } else if (command === "gen-repos") {
    const [dir, repos, count, min, max, seed] = args.map((a, i) => (i === 0 ? a : Number(a)));
    for (let r = 0; r < repos; ++r) generate(join(dir, String(r)), count, min, max, seed + r, true);
  } else if (command === "free-port") {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      console.log(server.address().port);
      server.close();
    });
  } else {
    console.error("usage: peer.mjs snapshot|file|file-loop|scan|gen|free-port ...");
    process.exit(2);
  }
} catch (e) {
  console.error(`peer.mjs ${command} failed: ${e?.stack ?? e}`);
  process.exit(1);
}
