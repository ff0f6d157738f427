#!/usr/bin/env bash
# Prefill cost in CPU time, for machines too busy for wall-clock numbers
# (bench/run.sh): each engine runs its bench with ONE thread (no thread
# barrier to collapse under load) at a 512-token and a 16-token prompt, and
# the difference of the process's user CPU time is the cost of 496 prompt
# tokens (load, warm-up and the single decode step cancel out). llama_min's
# warm-up is itself a full prompt run, so its difference counts 2 x 496.
# Rounds alternate the engines; the best (lowest) difference of each is kept.
#
#   LARDER_B=/tmp/base/build/larder ROUNDS=3 bash bench/prefill_cpu.sh
#
# Prints per engine: CPU ms per prompt token and prompt tokens per CPU-second
# (= 1-thread prefill tok/s on an idle core). Engines: llama.cpp (its best
# CPU backend; with LLAMA_BINS_AVX2 = a folder holding only
# libggml-cpu-haswell.so, also "llama.cpp-avx2", its AVX2 build), A
# (LARDER_A, default build/larder) and B (LARDER_B, if set), each larder at
# the kernel levels in LEVELS (default "default avx2"). FILES: TinyLlama
# types (default "q4_k_m q8_0") and/or bench/run.sh's qwen3moe8-q4_k_m.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
OUT=${BENCH_DIR:-/tmp/larder-bench}
A=${LARDER_A:-$PWD/build/larder}
B=${LARDER_B:-}
LEVELS=${LEVELS:-default avx2}
FILES=${FILES:-q4_k_m q8_0}
export LLAMA_BINS=${LLAMA_BINS:-$PWD/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64}
LLAMA_MIN=${LLAMA_MIN:-$PWD/$(bash tools/llama/build.sh)}
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), rounds $ROUNDS, load average $(cut -d' ' -f1-3 /proc/loadavg)"
user_s() { /usr/bin/time -f %U -o /tmp/prefill_cpu.$$ "$@" >/dev/null 2>&1; cat /tmp/prefill_cpu.$$; }
declare -A best
for t in $FILES; do
  case $t in  # a bench/run.sh file name, or a TinyLlama type
    qwen3moe8-*) f="$OUT/$t.gguf"; make=(--preset qwen3-30b-a3b --layers 8 --type "${t#qwen3moe8-}");;
    *) f="$OUT/tinyllama-$t.gguf"; make=(--preset tinyllama-1.1b --type "$t");;
  esac
  [ -f "$f" ] || "$A" make-model "${make[@]}" --out "$f" --quiet
  engines="llama.cpp"
  [ -n "${LLAMA_BINS_AVX2:-}" ] && engines+=" llama.cpp-avx2"
  for lv in $LEVELS; do engines+=" A-$lv"; [ -n "$B" ] && engines+=" B-$lv"; done
  for r in $(seq "$ROUNDS"); do
    for e in $engines; do
      case $e in
        llama.cpp) cmd=("$LLAMA_MIN" bench); per=2;;
        llama.cpp-avx2) cmd=(env "LLAMA_BINS=$LLAMA_BINS_AVX2" "$LLAMA_MIN" bench); per=2;;
        A-*) cmd=(env "LARDER_CPU=${e#A-}" "$A" bench); per=1;;
        B-*) cmd=(env "LARDER_CPU=${e#B-}" "$B" bench); per=1;;
      esac
      [ "${e#*-}" = default ] && cmd=("${cmd[@]/LARDER_CPU=default/LARDER_CPU_UNSET=1}")
      long=$(user_s "${cmd[@]}" --model "$f" --threads 1 --prompt-tokens 512 --gen-tokens 1 --json)
      short=$(user_s "${cmd[@]}" --model "$f" --threads 1 --prompt-tokens 16 --gen-tokens 1 --json)
      ms=$(awk -v l="$long" -v s="$short" -v p=$per 'BEGIN { printf "%.3f", (l - s) * 1000 / (496 * p) }')
      echo "{\"file\":\"$t\",\"round\":$r,\"engine\":\"$e\",\"cpu_ms_per_prompt_token\":$ms}"
      k="$t $e"
      if [ -z "${best[$k]:-}" ] || awk -v a="$ms" -v b="${best[$k]}" 'BEGIN { exit !(a < b) }'; then best[$k]=$ms; fi
    done
  done
done
rm -f /tmp/prefill_cpu.$$
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| file | engine | CPU ms / prompt token (best) | prompt tok / CPU-s | vs llama.cpp | vs llama.cpp-avx2 |"
echo "|---|---|---|---|---|---|"
for t in $FILES; do
  l=${best["$t llama.cpp"]}
  l2=${best["$t llama.cpp-avx2"]:-}
  for k in "${!best[@]}"; do
    [ "${k%% *}" = "$t" ] || continue
    awk -v k="$k" -v m="${best[$k]}" -v l="$l" -v l2="$l2" 'BEGIN { split(k, a, " "); printf "| %s | %s | %.3f | %.1f | %.2fx | %s |\n", a[1], a[2], m, 1000 / m, l / m, l2 != "" ? sprintf("%.2fx", l2 / m) : "-" }'
  done | sort
done
