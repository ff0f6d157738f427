#!/usr/bin/env bash
# py_node_check.sh — runs each server benchmark's node original (bench/*.mjs)
# and python3 port (bench/*.py) against fresh `larder serve` processes with
# the configurations of bench/SERVER_RESULTS.md (alternating, ROUNDS rounds),
# and prints both implementations' lines side by side, to show the ports
# measure what the originals measure. Needs node, python3 and build/larder.
# usage: bash bench/py_node_check.sh OUTDIR [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$1 ROUNDS=${2:-2} L=${LARDER:-build/larder} V=../shared/vocab
export SHARED=${SHARED:-$(cd ../shared && pwd)}
mkdir -p "$OUT"
[ -f "$OUT/storm.gguf" ] || "$L" make-model --arch llama --vocab $V/ggml-vocab-llama-spm.gguf --dim 512 --ff 1024 \
  --heads 4 --kv-heads 2 --head-dim 128 --layers 8 --ctx 4096 --type q8_0 --out "$OUT/storm.gguf" >/dev/null
[ -f "$OUT/replay.gguf" ] || "$L" make-model --arch qwen2 --vocab $V/ggml-vocab-qwen2.gguf \
  --chat-template ../shared/templates/Qwen-Qwen2.5-7B-Instruct.jinja --dim 256 --ff 512 --heads 4 \
  --kv-heads 2 --layers 4 --ctx 32768 --type q8_0 --out "$OUT/replay.gguf" >/dev/null
PID=""
stop() { [ -n "$PID" ] && { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }; }
trap stop EXIT
start() { # MODEL FLAGS...
  local m=$1; shift
  local port; port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  URL=http://127.0.0.1:$port
  "$L" serve --model "$m" --host 127.0.0.1 --port "$port" --threads 2 "$@" >>"$OUT/serve.log" 2>&1 &
  PID=$!
  until python3 -c "import urllib.request; urllib.request.urlopen('$URL/health', timeout=2)" 2>/dev/null; do sleep 0.2; done
}
for r in $(seq 1 "$ROUNDS"); do
  for impl in mjs py; do
    run=(node); [ $impl = py ] && run=(python3)
    start "$OUT/storm.gguf" --ctx-size 4096 --kv-memory 512M
    echo "followup $impl $("${run[@]}" bench/followup_ttft.$impl --url "$URL" --words 3500 --append-words 50)"; stop
    start "$OUT/storm.gguf" --kv-memory 32M --parallel 4
    echo "storm $impl $("${run[@]}" bench/budget_storm.$impl --url "$URL" --conversations 24 --words 1650)"; stop
    start "$OUT/replay.gguf" --kv-memory 256M
    echo "replay $impl $("${run[@]}" bench/agent_replay.$impl --url "$URL" --sessions 3 --turns 4 --concurrency 3 \
      --append-chars 1500 | tail -1)"; stop
  done
done | tee "$OUT/lines.txt"
