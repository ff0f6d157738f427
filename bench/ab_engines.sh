#!/usr/bin/env bash
# A/B of two larder builds against llama.cpp on a busy machine: every round
# runs each engine once per file, in the same order (llama.cpp, then each
# larder at each kernel level), so bursts of load hit all of them alike;
# bench/summary-style best-of-rounds and the per-round lines are printed.
#
#   LARDER_A=build/larder LARDER_B=/tmp/base/build/larder ROUNDS=3 bash bench/ab_engines.sh
#
# Engines: llama.cpp (tools/llama/llama_min bench, libllama from
# node-llama-cpp, its best CPU backend; LLAMA=0 leaves it out: under load its
# spinning thread barrier collapses, see bench/RESULTS.md), A and B at the default kernel level
# and with LARDER_CPU=avx2 (LEVELS="default avx2" by default). Same workload
# as bench/run.sh: 512-token prompt batch, then 128 decode steps, THREADS
# threads, on the TinyLlama-shaped files of BENCH_DIR (written if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
OUT=${BENCH_DIR:-/tmp/larder-bench}
A=${LARDER_A:-$PWD/build/larder}
B=${LARDER_B:?LARDER_B: the larder binary to compare with}
LEVELS=${LEVELS:-default avx2}
FILES=${FILES:-q4_k_m q8_0}
export LLAMA_BINS=${LLAMA_BINS:-$PWD/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64}
LLAMA_MIN=${LLAMA_MIN:-$PWD/$(bash tools/llama/build.sh)}
mkdir -p "$OUT"
log="$OUT/ab.jsonl"
: >"$log"
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, threads $THREADS, rounds $ROUNDS, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# A = $A, B = $B"
args() { echo --model "$1" --threads "$THREADS" --prompt-tokens 512 --gen-tokens 128 --json; }
for t in $FILES; do
  f="$OUT/tinyllama-$t.gguf"
  [ -f "$f" ] || "$A" make-model --preset tinyllama-1.1b --type "$t" --out "$f" --quiet
  for r in $(seq "$ROUNDS"); do
    if [ "${LLAMA:-1}" != 0 ]; then
      # shellcheck disable=SC2046
      l=$("$LLAMA_MIN" bench $(args "$f"))
      echo "{\"file\":\"$t\",\"round\":$r,\"engine\":\"llama.cpp\",\"result\":$l}" >>"$log"
    fi
    for lv in $LEVELS; do
      for e in A B; do
        bin=$A; [ $e = B ] && bin=$B
        if [ "$lv" = default ]; then l=$("$bin" bench $(args "$f")); else l=$(LARDER_CPU=$lv "$bin" bench $(args "$f")); fi
        echo "{\"file\":\"$t\",\"round\":$r,\"engine\":\"$e-$lv\",\"result\":$l}" >>"$log"
      done
    done
  done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const best = {}, rounds = {};
for (const {file, engine, result: r} of lines) {
  const k = file + " " + engine, p = r.prefill_tok_s, d = r.decode_tok_s;
  (rounds[k] ||= []).push(`${p.toFixed(1)}/${d.toFixed(1)}`);
  best[k] = {p: Math.max(p, best[k]?.p ?? 0), d: Math.max(d, best[k]?.d ?? 0)};
}
console.log("| file | engine | prefill tok/s (best) | decode tok/s (best) | vs llama.cpp | vs B, same level | rounds (prefill/decode) |");
console.log("|---|---|---|---|---|---|---|");
for (const k of Object.keys(best)) {
  const [file, engine] = k.split(" "), l = best[file + " llama.cpp"], b = best[k];
  const o = best[file + " " + engine.replace(/^A-/, "B-")];
  const vl = l ? `${(b.p / l.p).toFixed(2)}x / ${(b.d / l.d).toFixed(2)}x` : "-";
  const vb = engine.startsWith("A-") && o ? `${(b.p / o.p).toFixed(2)}x / ${(b.d / o.d).toFixed(2)}x` : "-";
  console.log(`| ${file} | ${engine} | ${b.p.toFixed(1)} | ${b.d.toFixed(2)} | ${vl} | ${vb} | ${rounds[k].join(", ")} |`);
}' "$log"
