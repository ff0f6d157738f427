#!/usr/bin/env bash
# serve_gpu.sh — the server benchmarks of bench/SERVER_RESULTS.md (follow-up
# TTFT, budget storm, agent replay) on one model and device, with python3
# alone (the GPU machines have no node): for each benchmark it starts
# `larder serve` with the given binary, model and --device, waits for
# /health, runs the python3 port (bench/*.py), stops the server, then prints
# one summary table and writes everything under --out.
#
# usage: bash bench/serve_gpu.sh --larder BIN --model FILE --out DIR
#          [--device cuda|cpu] [--gpu N] [--threads N] [--port 18090] [--python python3]
# Servers listen on 127.0.0.1, ports --port, --port + 1, ... (--port 0: free
# ports the system picks).
#
# The KV pools are sized in tokens of this model's KV (read from `larder
# bench --seqs 1 --json`, f16 like the server's default), so the runs keep
# the shapes of SERVER_RESULTS.md on any model:
#   follow-up:   --ctx-size $FOLLOWUP_CTX (4096), a pool of $FOLLOWUP_KV_TOKENS (24576)
#                tokens; followup_ttft.py $FOLLOWUP_ARGS (--words 3500 --append-words 50)
#   storm:       --parallel 4, a pool of $STORM_KV_TOKENS (4096) tokens, --ctx-size
#                $STORM_CTX (4096); budget_storm.py $STORM_ARGS (--conversations 24 --words 1650)
#   replay:      --ctx-size $REPLAY_CTX (16384), a pool of $REPLAY_KV_TOKENS (131072)
#                tokens; agent_replay.py $REPLAY_ARGS (--sessions 3 --turns 4 --concurrency 3
#                --append-chars 1500), once per mode of $REPLAY_MODES ("on off": the
#                cache on, and --prompt-cache-size 0)
# $SERVE_ARGS is added to every server's flags (e.g. "--kv-type q8_0").
# Output under DIR: followup.json, storm.json, replay_MODE.json (the
# benchmarks' last lines), serve_NAME.log, summary.json and summary.md.
# Needs: bash, python3 (standard library), the larder binary, ../shared (the
# agent replay reads $SHARED/traces/opencode-turn1.json; SHARED defaults to
# ../shared beside this repository).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LARDER="" MODEL="" OUT="" DEVICE=cuda GPU="" THREADS="" PORT=18090 PY=python3
while [ $# -gt 0 ]; do
  case $1 in
    --larder) LARDER=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --gpu) GPU=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "serve_gpu.sh: unknown argument $1 (--help)" >&2; exit 1 ;;
  esac
done
if [ -z "$LARDER" ] || [ -z "$MODEL" ] || [ -z "$OUT" ]; then
  echo "serve_gpu.sh: --larder, --model and --out are required (--help)" >&2; exit 1
fi
[ -x "$LARDER" ] || { echo "serve_gpu.sh: $LARDER is not an executable" >&2; exit 1; }
[ -r "$MODEL" ] || { echo "serve_gpu.sh: cannot read $MODEL" >&2; exit 1; }
case $PORT in ''|*[!0-9]*) echo "serve_gpu.sh: --port must be a number" >&2; exit 1 ;; esac
export SHARED=${SHARED:-$(cd "$HERE/../../shared" 2>/dev/null && pwd || echo "$HERE/../../shared")}
mkdir -p "$OUT"

FOLLOWUP_CTX=${FOLLOWUP_CTX:-4096} FOLLOWUP_KV_TOKENS=${FOLLOWUP_KV_TOKENS:-24576}
FOLLOWUP_ARGS=${FOLLOWUP_ARGS:---words 3500 --append-words 50}
STORM_CTX=${STORM_CTX:-4096} STORM_KV_TOKENS=${STORM_KV_TOKENS:-4096}
STORM_ARGS=${STORM_ARGS:---conversations 24 --words 1650}
REPLAY_CTX=${REPLAY_CTX:-16384} REPLAY_KV_TOKENS=${REPLAY_KV_TOKENS:-131072}
REPLAY_ARGS=${REPLAY_ARGS:---sessions 3 --turns 4 --concurrency 3 --append-chars 1500}
REPLAY_MODES=${REPLAY_MODES:-on off}
SERVE_ARGS=${SERVE_ARGS:-}

DEV_ARGS=(--device "$DEVICE")
[ -n "$GPU" ] && DEV_ARGS+=(--gpu "$GPU")
THREAD_ARGS=()
[ -n "$THREADS" ] && THREAD_ARGS=(--threads "$THREADS")

# KV bytes per token of this model (f16), from larder bench's JSON.
BENCH_JSON=$("$LARDER" bench --model "$MODEL" "${DEV_ARGS[@]}" "${THREAD_ARGS[@]}" --seqs 1 --prompt-tokens 8 \
  --gen-tokens 1 --json) || { echo "serve_gpu.sh: larder bench could not run the model (above)" >&2; exit 1; }
KV_PER_TOKEN=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["kv_bytes_per_token"])' "$BENCH_JSON")
kv_mib() { echo $(( ($1 * KV_PER_TOKEN + 1048575) / 1048576 ))M; }
echo "serve_gpu.sh: $MODEL on $DEVICE, $KV_PER_TOKEN bytes of KV per token; results in $OUT"

SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

# start_server NAME PORT FLAGS...: starts larder serve on PORT (0: a free
# one), sets SERVER_URL, waits for /health (600 s: uploading big weights).
start_server() {
  local name=$1 port=$2; shift 2
  if [ "$port" -eq 0 ]; then
    port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  fi
  SERVER_URL=http://127.0.0.1:$port
  # shellcheck disable=SC2086
  "$LARDER" serve --model "$MODEL" --host 127.0.0.1 --port "$port" "${DEV_ARGS[@]}" "${THREAD_ARGS[@]}" \
    "$@" $SERVE_ARGS >"$OUT/serve_$name.log" 2>&1 &
  SERVER_PID=$!
  "$PY" - "$port" "$SERVER_PID" <<'EOF' || { echo "serve_gpu.sh: the $name server did not start:" >&2; tail -20 "$OUT/serve_$name.log" >&2; exit 1; }
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
t0 = time.time()
while time.time() - t0 < 600:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(1)
EOF
}

# run_bench NAME SCRIPT ARGS...: the benchmark's output to NAME.out, its last line to NAME.json.
run_bench() {
  local name=$1 script=$2; shift 2
  echo "serve_gpu.sh: $name: $PY bench/$script $*"
  "$PY" "$HERE/$script" "$@" >"$OUT/$name.out"
  tail -n 1 "$OUT/$name.out" >"$OUT/$name.json"
}

# shellcheck disable=SC2086
{
  next_port() { [ "$PORT" -eq 0 ] && echo 0 || echo $((PORT + $1)); }
  start_server followup "$(next_port 0)" --ctx-size "$FOLLOWUP_CTX" --kv-memory "$(kv_mib "$FOLLOWUP_KV_TOKENS")"
  run_bench followup followup_ttft.py --url "$SERVER_URL" $FOLLOWUP_ARGS
  stop_server

  start_server storm "$(next_port 1)" --ctx-size "$STORM_CTX" --parallel 4 --kv-memory "$(kv_mib "$STORM_KV_TOKENS")"
  run_bench storm budget_storm.py --url "$SERVER_URL" $STORM_ARGS
  stop_server

  k=2
  for mode in $REPLAY_MODES; do
    case $mode in
      on) flags=() ;;
      off) flags=(--prompt-cache-size 0) ;;
      *) echo "serve_gpu.sh: unknown replay mode $mode (on, off)" >&2; exit 1 ;;
    esac
    start_server "replay_$mode" "$(next_port $k)" --ctx-size "$REPLAY_CTX" --kv-memory "$(kv_mib "$REPLAY_KV_TOKENS")" "${flags[@]}"
    run_bench "replay_$mode" agent_replay.py --url "$SERVER_URL" --label "$mode" $REPLAY_ARGS
    stop_server
    k=$((k + 1))
  done
}

"$PY" - "$OUT" "$MODEL" "$DEVICE" "$KV_PER_TOKEN" "$REPLAY_MODES" <<'EOF'
import json, os, sys
out, model, device, kv_per_token, modes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split()
load = lambda n: json.load(open(os.path.join(out, n + ".json")))
f, s = load("followup"), load("storm")
r = {m: load("replay_" + m) for m in modes}
sec = lambda ms: f"{ms / 1000:.3f} s" if ms is not None else "-"
cached = lambda u: ((u or {}).get("prompt_tokens_details") or {}).get("cached_tokens")
lines = [f"model {model}, --device {device}, {kv_per_token} bytes of KV per token", "",
         "| benchmark | result |", "|---|---|",
         f"| follow-up TTFT | cold {sec(f['cold']['ttft_ms'])} ({f['cold']['usage']['prompt_tokens']} tokens), "
         f"warm {sec(f['warm']['ttft_ms'])} ({cached(f['warm']['usage'])} of {f['warm']['usage']['prompt_tokens']} cached), "
         f"warm / cold **{f['ratio']}** |",
         f"| budget storm | **{s['completed']} / {s['conversations']}** completed, {s['errors']} errors, "
         f"{s['retries503']} 503 retries, {s['preemptions']} preemptions, wall {s['wall_s']} s, RSS growth "
         f"{s['rss_growth_mib']} MiB, KV budget {s['kv_budget_mib']} MiB |"]
for m, x in r.items():
    lines.append(f"| agent replay, cache {m} | {x['ok']}/{x['requests']} ok, TTFT cold {sec(x['ttft_cold_ms'])}, "
                 f"warm {sec(x['ttft_warm_ms'])}, cached / ideal **{x['cached_ratio_vs_ideal']}**, bookkeeping / engine "
                 f"{x['cache_bookkeeping_fraction']}, {x['prompt_tokens_total']} prompt tokens in {x['wall_s']} s, "
                 f"peak RSS {x['peak_rss_mib']} MiB |")
text = "\n".join(lines)
print(text)
open(os.path.join(out, "summary.md"), "w").write(text + "\n")
json.dump({"model": model, "device": device, "kv_bytes_per_token": kv_per_token, "followup": f, "storm": s,
           "replay": r}, open(os.path.join(out, "summary.json"), "w"), indent=1)
EOF
