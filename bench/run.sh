#!/usr/bin/env bash
# make bench — larder against llama.cpp on the same files, same machine, same
# thread count, in one run; results go to stdout as JSON lines (copy them
# into bench/RESULTS.md with the date and machine).
#
#   THREADS=2 bash bench/run.sh            # engine: prefill/decode vs libllama
#   BENCH=replay bash bench/run.sh         # server: bench/agent_replay.mjs (cache on/off/tight)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
OUT=${BENCH_DIR:-/tmp/larder-bench}
mkdir -p "$OUT"
export LLAMA_BINS=$PWD/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
bash tools/llama/build.sh >/dev/null
gcc -O3 -march=native -pthread -o "$OUT/bandwidth" bench/bandwidth.c

if [ "${BENCH:-engine}" = engine ]; then
  echo "# memory read bandwidth, $THREADS threads"
  "$OUT/bandwidth" "$THREADS" 1024
  for t in q4_k_m q8_0; do
    f="$OUT/tinyllama-$t.gguf"
    [ -f "$f" ] || ./build/larder make-model --preset tinyllama-1.1b --type $t --out "$f" --quiet
    bytes=$(stat -c %s "$f")
    echo "# $f ($bytes bytes)"
    l=$(./build/llama_min bench --model "$f" --threads "$THREADS" --prompt-tokens 512 --gen-tokens 128 --json 2>/dev/null)
    r=$(./build/larder bench --model "$f" --threads "$THREADS" --prompt-tokens 512 --gen-tokens 128 --json)
    echo "{\"file\":\"tinyllama-$t\",\"bytes\":$bytes,\"llama_cpp\":$l,\"larder\":$r}"
  done
else
  model="$OUT/replay.gguf"
  [ -f "$model" ] || ./build/larder make-model --arch qwen2 --vocab ../shared/vocab/ggml-vocab-qwen2.gguf \
      --chat-template ../shared/templates/Qwen-Qwen2.5-7B-Instruct.jinja --dim 256 --ff 512 --heads 4 --kv-heads 2 \
      --layers 4 --ctx 32768 --type q8_0 --out "$model" --quiet
  for mode in "on:" "off:--prompt-cache-size 0" "tight:--prompt-cache-bytes 8M"; do
    name=${mode%%:*}; args=${mode#*:}
    port=$((20000 + RANDOM % 20000))
    ./build/larder serve --model "$model" --port $port --threads "$THREADS" --kv-memory 256M $args >"$OUT/serve-$name.log" 2>&1 &
    pid=$!
    for i in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
    SHARED=../shared node bench/agent_replay.mjs --url "http://127.0.0.1:$port" --label "cache-$name" --sessions 4 --turns 6 --concurrency 2 | tail -1
    kill $pid; wait $pid 2>/dev/null || true
  done
fi
