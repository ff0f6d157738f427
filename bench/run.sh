#!/usr/bin/env bash
# make bench — larder against llama.cpp on the same files, same machine, same
# thread count, in one run.
#
#   THREADS=2 REPS=3 bash bench/run.sh     # engine: prefill/decode vs libllama
#   BENCH=replay bash bench/run.sh         # server: bench/agent_replay.mjs (cache on/off/tight)
#
# Engine benchmark: random-weight files written by `larder make-model`:
# TinyLlama-1.1B-shaped (--preset tinyllama-1.1b) in Q4_K_M and Q8_0, and a
# Qwen3-30B-A3B-shaped mixture of experts cut to 8 of its 48 layers
# (--preset qwen3-30b-a3b --layers 8) in Q4_K_M. FILES picks some of them
# (default "tinyllama-q4_k_m tinyllama-q8_0 qwen3moe8-q4_k_m"). For each
# file, REPS rounds, each running llama.cpp (tools/llama/llama_min bench:
# libllama from node-llama-cpp, called from C) and then larder bench, both the
# llama-bench way (one prompt batch of 512 tokens, 256 for the MoE file; 128
# generation steps of one token). Rounds alternate the two engines so that a
# burst of load on a shared machine hits both; the summary keeps each
# engine's best round. Also measured: memory read bandwidth with THREADS
# threads (bench/bandwidth.c), and the bandwidth decode reaches = decode
# tok/s x bytes of weights read per token as larder bench reports them
# (every matrix but token_embd, of which one row is read — all of it when
# the output is tied to it — and of the stacked experts only the chosen).
#
# Output: one JSON line per measurement, then a summary table (markdown) for
# bench/RESULTS.md. Environment: LARDER (default build/larder), LLAMA_MIN
# (default: built by tools/llama/build.sh), LLAMA_BINS (the CPU backends'
# folder), CPUS (taskset CPU list to pin every process, e.g. 0,1), BENCH_DIR
# (model files and tools, default /tmp/larder-bench), SHARED (vocabularies),
# BANDWIDTH (a prebuilt bench/bandwidth binary).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
REPS=${REPS:-3}
OUT=${BENCH_DIR:-/tmp/larder-bench}
LARDER=${LARDER:-$PWD/build/larder}
export SHARED=${SHARED:-$(cd .. && pwd)/shared}
export LLAMA_BINS=${LLAMA_BINS:-$PWD/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64}
mkdir -p "$OUT"
PIN=()
[ -n "${CPUS:-}" ] && PIN=(taskset -c "$CPUS")

if [ "${BENCH:-engine}" = engine ]; then
  LLAMA_MIN=${LLAMA_MIN:-$PWD/$(bash tools/llama/build.sh)}
  BANDWIDTH=${BANDWIDTH:-$OUT/bandwidth}
  [ -x "$BANDWIDTH" ] && [ "$BANDWIDTH" -nt bench/bandwidth.c ] || gcc -O3 -march=native -pthread -o "$BANDWIDTH" bench/bandwidth.c
  echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs," \
       "threads $THREADS, reps $REPS${CPUS:+, pinned to CPUs $CPUS}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  log="$OUT/results.jsonl"
  : >"$log"
  bw=$("${PIN[@]}" "$BANDWIDTH" "$THREADS" 1024)
  echo "{\"bandwidth\":$bw}" | tee -a "$log"
  for name in ${FILES:-tinyllama-q4_k_m tinyllama-q8_0 qwen3moe8-q4_k_m}; do
    f="$OUT/$name.gguf"
    case $name in
      tinyllama-*) make=(--preset tinyllama-1.1b --type "${name#tinyllama-}"); prompt=512;;
      qwen3moe8-*) make=(--preset qwen3-30b-a3b --layers 8 --type "${name#qwen3moe8-}"); prompt=256;;
      *) echo "bench/run.sh: unknown file $name" >&2; exit 1;;
    esac
    [ -f "$f" ] || "$LARDER" make-model "${make[@]}" --out "$f" --quiet
    # Bytes of weights one decode step reads (see the header comment).
    per_tok=$("$LARDER" bench --model "$f" --threads "$THREADS" --prompt-tokens 1 --gen-tokens 1 --json |
              sed 's/.*"decode_bytes_per_token":\([0-9]*\).*/\1/')
    echo "{\"file\":\"$name\",\"file_bytes\":$(stat -c %s "$f"),\"decode_bytes_per_token\":$per_tok,\"prompt_tokens\":$prompt}" | tee -a "$log"
    for r in $(seq "$REPS"); do
      l=$("${PIN[@]}" "$LLAMA_MIN" bench --model "$f" --threads "$THREADS" --prompt-tokens $prompt --gen-tokens 128 --json)
      echo "{\"file\":\"$name\",\"round\":$r,\"engine\":\"llama.cpp\",\"result\":$l}" | tee -a "$log"
      g=$("${PIN[@]}" "$LARDER" bench --model "$f" --threads "$THREADS" --prompt-tokens $prompt --gen-tokens 128 --json)
      echo "{\"file\":\"$name\",\"round\":$r,\"engine\":\"larder\",\"result\":$g}" | tee -a "$log"
    done
  done
  echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  if command -v node >/dev/null; then node bench/summary.mjs "$log"; else echo "# summary: node bench/summary.mjs $log"; fi
else
  model="$OUT/replay.gguf"
  [ -f "$model" ] || "$LARDER" make-model --arch qwen2 --vocab "$SHARED/vocab/ggml-vocab-qwen2.gguf" \
      --chat-template "$SHARED/templates/Qwen-Qwen2.5-7B-Instruct.jinja" --dim 256 --ff 512 --heads 4 --kv-heads 2 \
      --layers 4 --ctx 32768 --type q8_0 --out "$model" --quiet
  for mode in "on:" "off:--prompt-cache-size 0" "tight:--prompt-cache-bytes 8M"; do
    name=${mode%%:*}; args=${mode#*:}
    port=$((20000 + RANDOM % 20000))
    # shellcheck disable=SC2086
    "$LARDER" serve --model "$model" --port $port --threads "$THREADS" --kv-memory 256M $args >"$OUT/serve-$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
    node bench/agent_replay.mjs --url "http://127.0.0.1:$port" --label "cache-$name" --sessions 4 --turns 6 --concurrency 2 | tail -1
    kill $pid; wait $pid 2>/dev/null || true
  done
fi
