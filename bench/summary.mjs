// summary.mjs — the table of bench/RESULTS.md from the JSON lines that
// bench/run.sh writes (results.jsonl): per file and engine the best round's
// prefill and decode tok/s, the bandwidth decode reaches (decode tok/s x
// weight bytes read per token) and its fraction of the measured read
// bandwidth, and larder's ratio to llama.cpp.
//   node bench/summary.mjs /tmp/larder-bench/results.jsonl
import {readFileSync} from "node:fs";

const lines = readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const bw = lines.find((l) => l.bandwidth)?.bandwidth;
if (!bw) throw new Error("no bandwidth line");
const files = {};
for (const l of lines) {
  if (!l.file) continue;
  const f = files[l.file] ??= {best: {}, rounds: 0};
  if (l.decode_bytes_per_token) f.bytes = l.decode_bytes_per_token;
  if (!l.engine) continue;
  const b = f.best[l.engine] ??= {pp: 0, tg: 0, n: 0};
  b.pp = Math.max(b.pp, l.result.prefill_tok_s);
  b.tg = Math.max(b.tg, l.result.decode_tok_s);
  b.n++;
}
console.log(`memory read bandwidth, ${bw.threads} threads: ${bw.read_gb_s.toFixed(1)} GB/s\n`);
console.log("| file | engine | prefill tok/s | decode tok/s | decode GB/s | of bandwidth |");
console.log("|---|---|---|---|---|---|");
for (const [name, f] of Object.entries(files)) {
  for (const e of ["llama.cpp", "larder"]) {
    const b = f.best[e];
    if (!b) continue;
    const gbs = b.tg * f.bytes / 1e9;
    console.log(`| ${name} | ${e} | ${b.pp.toFixed(1)} | ${b.tg.toFixed(2)} | ${gbs.toFixed(1)} | ${(100 * gbs / bw.read_gb_s).toFixed(0)}% |`);
  }
  const L = f.best["larder"], C = f.best["llama.cpp"];
  if (L && C) console.log(`| ${name} | **larder / llama.cpp** | **${(L.pp / C.pp).toFixed(2)}x** | **${(L.tg / C.tg).toFixed(2)}x** | | |`);
}
