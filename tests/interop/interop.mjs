// The peer client's side of hubcache's interoperability tests.
//
//   node interop.mjs snapshot HUB_URL REPO CACHE_DIR [REVISION]   -> prints the snapshot folder
//   node interop.mjs file HUB_URL REPO PATH REVISION CACHE_DIR    -> prints the file's cache path
//   node interop.mjs scan CACHE_DIR                               -> prints scanCacheDir as JSON
//
// Repos are "org/name" (model) or "datasets/org/name". Exit code 1 with the error on failure.
import { snapshotDownload, downloadFileToCacheDir, scanCacheDir } from "@huggingface/hub";
import { relative } from "node:path";

function designation(repo) {
  if (repo.startsWith("datasets/")) return { type: "dataset", name: repo.slice("datasets/".length) };
  if (repo.startsWith("spaces/")) return { type: "space", name: repo.slice("spaces/".length) };
  return { type: "model", name: repo };
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === "snapshot") {
    const [hubUrl, repo, cacheDir, revision] = args;
    console.log(await snapshotDownload({ repo: designation(repo), cacheDir, hubUrl, revision: revision || "main" }));
  } else if (command === "file") {
    const [hubUrl, repo, path, revision, cacheDir] = args;
    console.log(await downloadFileToCacheDir({ repo: designation(repo), path, revision, cacheDir, hubUrl }));
  } else if (command === "scan") {
    const [cacheDir] = args;
    const info = await scanCacheDir(cacheDir);
    const out = {
      size: info.size,
      warnings: info.warnings.map((w) => String(w.message ?? w)),
      repos: info.repos.map((r) => ({
        id: r.id,
        size: r.size,
        filesCount: r.filesCount,
        revisions: r.revisions.map((v) => ({
          commitOid: v.commitOid,
          refs: [...v.refs].sort(),
          size: v.size,
          files: v.files.map((f) => ({ path: relative(v.path, f.path), size: f.blob.size })).sort((a, b) =>
            a.path < b.path ? -1 : 1),
        })),
      })),
    };
    console.log(JSON.stringify(out));
  } else {
    console.error("usage: interop.mjs snapshot|file|scan ...");
    process.exit(2);
  }
} catch (e) {
  console.error(`@huggingface/hub failed: ${e?.stack ?? e}`);
  process.exit(1);
}
