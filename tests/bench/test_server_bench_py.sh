#!/usr/bin/env bash
# test_server_bench_py.sh — the python3 ports of the server benchmarks
# (bench/followup_ttft.py, budget_storm.py, agent_replay.py) and their
# driver bench/serve_gpu.sh, so they do not rot: serve_gpu.sh runs each for
# a few seconds against a tiny chat model on the CPU backend; every output
# line has the shape of the .mjs original's (the same keys in the same
# order), the figures are sane (all storm conversations complete, the
# follow-up finds its whole first prompt cached, the replay with the cache
# on reuses >= 95% of the ideal), and the summary table has its rows. Then
# node's and python's agent replay (one session at a time, so nothing
# depends on timing; --no-prewarm, whose background work races the next
# turn) and follow-up, each against a fresh server, must send
# the same requests: equal prompt, cached and completion tokens per turn.
set -u
cd "$(dirname "$0")/../.."
LARDER=${LARDER:-build/larder} SHARED=${SHARED:-../shared}
export SHARED
T=${TEST_TMP:-/tmp}/server_bench_py
rm -rf "$T"; mkdir -p "$T"
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

"$LARDER" make-model --arch qwen2 --vocab "$SHARED/vocab/ggml-vocab-qwen2.gguf" \
  --chat-template "$SHARED/templates/Qwen-Qwen2.5-7B-Instruct.jinja" --dim 64 --ff 128 --heads 4 --kv-heads 2 \
  --layers 2 --ctx 32768 --type f32 --seed 7 --out "$T/chat.gguf" >/dev/null || { fail make-model "rc $?"; exit 1; }

# 1. the driver and the three ports, a few seconds in all
if FOLLOWUP_ARGS="--words 600 --append-words 30" STORM_ARGS="--conversations 8 --words 300" STORM_KV_TOKENS=1024 \
   REPLAY_ARGS="--sessions 2 --turns 3 --concurrency 2 --append-chars 500 --max-tokens 4" REPLAY_KV_TOKENS=65536 \
   timeout 300 bash bench/serve_gpu.sh --larder "$LARDER" --model "$T/chat.gguf" --out "$T/run" --device cpu \
   --threads 2 --port 0 >"$T/driver.log" 2>&1; then
  pass "serve_gpu.sh runs the three benchmarks"
else
  fail "serve_gpu.sh runs the three benchmarks" "$(tail -20 "$T/driver.log")"
fi
python3 - "$T/run" "$T/driver.log" <<'EOF'
import json, os, sys
out, log = sys.argv[1], sys.argv[2]
def check(name, ok, why=""):
    print(f"PASS {name}" if ok else f"FAIL {name}: {why}")
def lines(name):
    try:
        return [json.loads(l) for l in open(os.path.join(out, name + ".out")) if l.strip()]
    except Exception as e:
        return e
f = lines("followup")
ok = isinstance(f, list) and len(f) == 1 and list(f[0]) == ["cold", "warm", "ratio"] and \
    all(list(f[0][k]) == ["ttft_ms", "usage"] and f[0][k]["ttft_ms"] > 0 for k in ("cold", "warm"))
check("followup_ttft.py: one line {cold:{ttft_ms,usage},warm,ratio}", ok, f)
if ok:
    c, w = f[0]["cold"]["usage"], f[0]["warm"]["usage"]
    check("followup_ttft.py: the warm request finds the cold prompt cached",
          w["prompt_tokens_details"]["cached_tokens"] == c["prompt_tokens"] and w["prompt_tokens"] > c["prompt_tokens"],
          (c, w))
s = lines("storm")
keys = ["conversations", "completed", "errors", "retries503", "wall_s", "kv_budget_mib", "rss_growth_mib", "preemptions"]
ok = isinstance(s, list) and len(s) == 1 and list(s[0]) == keys
check("budget_storm.py: one line with the .mjs keys", ok, s)
if ok:
    check("budget_storm.py: every conversation completes", s[0]["completed"] == s[0]["conversations"] == 8
          and s[0]["errors"] == 0 and s[0]["kv_budget_mib"] == 1, s)
row_keys = ["session", "turn", "status", "ttft_ms", "prompt_tokens", "cached_tokens", "ideal_cached", "completion_tokens"]
sum_keys = ["label", "sessions", "turns", "concurrency", "requests", "ok", "errors", "wall_s", "ttft_cold_ms",
            "ttft_warm_ms", "cached_ratio_vs_ideal", "prompt_tokens_total", "generated_tokens_total", "peak_rss_mib",
            "engine_busy_s", "cache_bookkeeping_s", "cache_bookkeeping_fraction", "prompt_tok_per_s"]
for mode in ("on", "off"):
    r = lines("replay_" + mode)
    ok = isinstance(r, list) and len(r) == 7 and all(list(x) == row_keys and x["status"] == 200 for x in r[:6]) \
        and list(r[6]) == sum_keys and r[6]["label"] == mode and r[6]["ok"] == 6
    check(f"agent_replay.py, cache {mode}: 6 turn lines and the summary line, .mjs keys", ok, r)
    if ok and mode == "on":
        check("agent_replay.py, cache on: cached / ideal >= 0.95", r[6]["cached_ratio_vs_ideal"] >= 0.95, r[6])
try:
    md = open(os.path.join(out, "summary.md")).read().splitlines()
    summ = json.load(open(os.path.join(out, "summary.json")))
    ok = sum(l.startswith("| ") for l in md) == 5 and set(summ["replay"]) == {"on", "off"} and \
        "| budget storm | **8 / 8**" in "\n".join(md) and md[0] in open(log).read()
except Exception as e:
    ok, md = False, e
check("serve_gpu.sh: summary table (printed, summary.md) and summary.json", ok, md)
EOF

# 2. python == node: the same requests, the same tokens cached
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PID=""
start() {
  local port; port=$(free_port); URL=http://127.0.0.1:$port
  "$LARDER" serve --model "$T/chat.gguf" --host 127.0.0.1 --port "$port" --threads 2 --device cpu \
    --kv-memory 16M --ctx-size 16384 --no-prewarm >>"$T/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen('$URL/health', timeout=2)" 2>/dev/null && return 0
    kill -0 "$PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
stop() { [ -n "$PID" ] && { kill "$PID"; wait "$PID" 2>/dev/null; PID=""; }; }
trap stop EXIT
REPLAY=(--sessions 2 --turns 4 --concurrency 1 --append-chars 700 --max-tokens 6)
for impl in mjs py; do
  run=(node); [ $impl = py ] && run=(python3)
  start || { fail "server for $impl" "$(tail -5 "$T/serve.log")"; continue; }
  "${run[@]}" "bench/agent_replay.$impl" --url "$URL" "${REPLAY[@]}" >"$T/replay.$impl" 2>&1 || fail "agent_replay.$impl" "rc $?"
  stop
  start || { fail "server for $impl" "$(tail -5 "$T/serve.log")"; continue; }
  "${run[@]}" "bench/followup_ttft.$impl" --url "$URL" --words 500 --append-words 20 >"$T/followup.$impl" 2>&1 \
    || fail "followup_ttft.$impl" "rc $?"
  stop
done
python3 - "$T" <<'EOF'
import json, sys
t = sys.argv[1]
def load(name):
    return [json.loads(l) for l in open(f"{t}/{name}") if l.strip()]
def tokens(rows):
    return [{k: v for k, v in r.items() if k != "ttft_ms"} for r in rows]
try:
    a, b = load("replay.mjs"), load("replay.py")
    ok = len(a) == len(b) == 9 and tokens(a[:8]) == tokens(b[:8]) and list(a[8]) == list(b[8]) and \
        all(a[8][k] == b[8][k] for k in ("requests", "ok", "cached_ratio_vs_ideal", "prompt_tokens_total",
                                         "generated_tokens_total")) and any(r["cached_tokens"] > 0 for r in a[:8])
    why = (a, b)
except Exception as e:
    ok, why = False, e
print("PASS agent_replay: python and node send the same turns, equal tokens cached" if ok else
      f"FAIL agent_replay: python and node differ: {why}")
try:
    a, b = load("followup.mjs")[0], load("followup.py")[0]
    ok = list(a) == list(b) and a["cold"]["usage"] == b["cold"]["usage"] and a["warm"]["usage"] == b["warm"]["usage"]
    why = (a, b)
except Exception as e:
    ok, why = False, e
print("PASS followup_ttft: python and node send the same prompts, equal usage" if ok else
      f"FAIL followup_ttft: python and node differ: {why}")
EOF
[ $fails -eq 0 ]
