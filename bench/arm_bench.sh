#!/usr/bin/env bash
# bench/arm_bench.sh — larder against llama.cpp on an ARM machine (Apple
# Silicon, Graviton, Ampere, Grace): same GGUF file, same thread count, the
# llama-bench workload (one 512-token prompt batch; 128 one-token decode
# steps), rounds alternating the two engines, each engine's best round kept.
# Prints one line per file with both engines' tokens/s and the ratios, held
# against the targets of the ARM64 port:
#     decode  larder / llama.cpp >= 1.0      prefill  larder / llama.cpp >= 0.8
# (llama.cpp built with its NEON / dotprod / i8mm kernels for this CPU).
#
#   LLAMA_BENCH=~/llama.cpp/build/bin/llama-bench bash bench/arm_bench.sh
#   LLAMA_BENCH=llama-bench THREADS=8 REPS=5 bash bench/arm_bench.sh my-model.gguf ...
#
# llama-bench: build llama.cpp (cmake -B build && cmake --build build -j) or
# `brew install llama.cpp`; on macOS pass nothing else (the CPU-only
# comparison uses -ngl 0, set below). Without file arguments the script
# writes random-weight TinyLlama-1.1B-shaped files in Q4_K_M and Q8_0 with
# `larder make-model --preset tinyllama-1.1b` (needs ../shared/vocab or
# SHARED). Environment: LARDER (default build/larder), THREADS (default: the
# performance cores on macOS, all cores elsewhere), REPS (3), OUT (files,
# default /tmp/larder-arm-bench).
#
# Not measured by the project: its build machines are x86-64 and run the
# ARM build only under qemu, where timing means nothing (bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
LARDER=${LARDER:-$PWD/build/larder}
LLAMA_BENCH=${LLAMA_BENCH:-llama-bench}
REPS=${REPS:-3}
OUT=${OUT:-/tmp/larder-arm-bench}
export SHARED=${SHARED:-$(cd .. && pwd)/shared}
if [ -z "${THREADS:-}" ]; then
  if [ "$(uname -s)" = Darwin ]; then
    THREADS=$(sysctl -n hw.perflevel0.physicalcpu 2>/dev/null || sysctl -n hw.ncpu)
  else
    THREADS=$(nproc)
  fi
fi
command -v "$LLAMA_BENCH" >/dev/null || { echo "arm_bench: llama-bench not found (set LLAMA_BENCH)" >&2; exit 1; }
[ -x "$LARDER" ] || { echo "arm_bench: $LARDER not built (make)" >&2; exit 1; }
mkdir -p "$OUT"

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  for t in q4_k_m q8_0; do
    f="$OUT/tinyllama-$t.gguf"
    [ -f "$f" ] || "$LARDER" make-model --preset tinyllama-1.1b --type "$t" --out "$f" --quiet
    files+=("$f")
  done
fi

cpu=$( (sysctl -n machdep.cpu.brand_string 2>/dev/null || lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1) || true)
kernels=$("$LARDER" bench --model "${files[0]}" --threads 1 --prompt-tokens 8 --gen-tokens 1 --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin).get("cpu_kernels", "?"))')
echo "# $(date -u +%FT%TZ) ${cpu:-unknown CPU} ($(uname -m)), threads $THREADS, reps $REPS, larder kernels: $kernels"
printf '%-28s %12s %12s %8s   %12s %12s %8s\n' file "prefill" "llama.cpp" ratio "decode" "llama.cpp" ratio
fails=0
for f in "${files[@]}"; do
  best=$(
    for r in $(seq "$REPS"); do
      "$LLAMA_BENCH" -m "$f" -t "$THREADS" -p 512 -n 128 -r 1 -ngl 0 -o json 2>/dev/null |
        python3 -c 'import json,sys
for t in json.load(sys.stdin):
    kind = "prefill" if t["n_prompt"] > 0 else "decode"
    print("llama", kind, t["avg_ts"])'
      "$LARDER" bench --model "$f" --threads "$THREADS" --prompt-tokens 512 --gen-tokens 128 --json |
        python3 -c 'import json,sys; o=json.load(sys.stdin); print("larder prefill", o["prefill_tok_s"]); print("larder decode", o["decode_tok_s"])'
    done | python3 -c 'import sys
best = {}
for l in sys.stdin:
    e, k, v = l.split(); best[(e, k)] = max(best.get((e, k), 0.0), float(v))
print(" ".join(str(best.get(x, 0.0)) for x in [("larder","prefill"),("llama","prefill"),("larder","decode"),("llama","decode")]))')
  read -r lp cp ld cd <<<"$best"
  line=$(python3 -c 'import sys
lp, cp, ld, cd = map(float, sys.argv[2:6])
rp = lp / cp if cp else 0.0; rd = ld / cd if cd else 0.0
ok = rp >= 0.8 and rd >= 1.0
verdict = "meets" if ok else "BELOW"
print(f"{sys.argv[1][-28:]:<28} {lp:12.1f} {cp:12.1f} {rp:7.2f}x   {ld:12.1f} {cd:12.1f} {rd:7.2f}x   {verdict} targets (prefill >= 0.8x, decode >= 1.0x)")
sys.exit(0 if ok else 1)' "$(basename "$f")" "$lp" "$cp" "$ld" "$cd") || fails=1
  echo "$line"
done
exit $fails
