#!/usr/bin/env python3
"""agent_replay.py — bench/agent_replay.mjs in python3's standard library
(for machines without node): a deterministic multi-turn agent workload
replayed against a running larder server (shaped like SGLang's and vLLM's
multi-turn benchmarks): sessions share one system prompt and tool list
(OpenCode's, from ../shared/traces), each turn appends a user message or a
tool-output-sized block, a few sessions run concurrently (one thread each),
and every turn resends the whole conversation, the assistant's previous
answers included. Same conversations, requests and printed lines as the .mjs.

Reports per turn: TTFT (first streamed chunk), prompt tokens, cached tokens
(usage.prompt_tokens_details.cached_tokens) against the ideal (everything
but the new tail), and at the end throughput and the server's peak RSS
(from /metrics).

usage: python3 bench/agent_replay.py --url http://127.0.0.1:8080 [--sessions 4]
       [--turns 6] [--concurrency 2] [--append-chars 2000] [--max-tokens 16]
       [--system-chars 0 (all)] [--no-tools] [--label NAME] [--json]
"""
import json
import math
import os
import re
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_http import Server, dumps, js_slice, lcg, now_ms, num, parse_args, read_chunks  # noqa: E402

args = parse_args(sys.argv[1:], flags_take_next=False)
server = Server(args.get("url") or "http://127.0.0.1:8080")
sessions = int(args.get("sessions") or 4)
turns = int(args.get("turns") or 6)
concurrency = int(args.get("concurrency") or 2)
append_chars = int(args.get("append-chars") or 2000)
max_tokens = int(args.get("max-tokens") or 16)
shared = os.environ.get("SHARED") or os.path.join(HERE, "../../shared")
with open(os.path.join(shared, "traces/opencode-turn1.json"), encoding="utf-8") as f:
    trace = json.load(f)
system = trace["messages"][0]["content"]
if int(args.get("system-chars") or 0) > 0:
    system = js_slice(system, int(args["system-chars"]))
tools = None if args.get("no-tools") else trace["tools"]

WORDS = ["int", "main", "return", "static", "void", "buffer", "size_t", "cache", "page", "node", "0x1f",
         "if", "else", "for", "while", "struct", "/* comment */", "{", "}", ";", "src/kv/pool.c", "42"]


def filler(seed, n):
    """Deterministic filler text shaped like tool output (file listings, code)."""
    x = math.fmod(float(seed) * 2654435761.0, 4294967296.0)
    out = []
    length = 0
    while length < n:
        x = lcg(x)
        w = WORDS[int(x) % len(WORDS)] + ("\n" if (int(x) >> 8) % 7 == 0 else " ")
        out.append(w)
        length += len(w)
    return js_slice("".join(out), n)


def turn(history):
    t0 = now_ms()
    body = {"model": "any", "messages": history}
    if tools is not None:
        body["tools"] = tools
    body.update({"max_tokens": max_tokens, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    conn, resp = server.request("POST", "/v1/chat/completions", body)
    try:
        if resp.status < 200 or resp.status > 299:
            return {"status": resp.status, "error": resp.read().decode("utf-8", "replace")}
        buf, ttft, text, usage = "", None, "", None
        for chunk in read_chunks(resp):
            buf += chunk
            while "\n\n" in buf:
                ev, buf = buf.split("\n\n", 1)
                if not ev.startswith("data: ") or ev == "data: [DONE]":
                    continue
                j = json.loads(ev[6:])
                if j.get("usage"):
                    usage = j["usage"]
                for c in j.get("choices") or []:
                    delta = c.get("delta") or {}
                    if ttft is None and ("content" in delta or delta.get("tool_calls")):
                        ttft = now_ms() - t0
                    if delta.get("content"):
                        text += delta["content"]
        return {"status": 200, "ttft_ms": ttft, "total_ms": now_ms() - t0, "text": text, "usage": usage}
    finally:
        conn.close()


results = []
results_lock = threading.Lock()


def run_session(s):
    history = [{"role": "system", "content": system}, {"role": "user", "content": f"Session {s}: " + filler(s, 400)}]
    prev_prompt = 0
    for t in range(turns):
        r = turn(history)
        row = {"session": s, "turn": t, "status": r["status"]}
        if r["status"] == 200:
            u = r["usage"]
            row["ttft_ms"] = num(r["ttft_ms"], 1)
            row["prompt_tokens"] = u["prompt_tokens"]
            row["cached_tokens"] = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
            # Ideal: everything the previous turn sent and received is reusable.
            row["ideal_cached"] = None if t == 0 else prev_prompt
            prev_prompt = u["prompt_tokens"] + u["completion_tokens"]
            row["completion_tokens"] = u["completion_tokens"]
            history.append({"role": "assistant", "content": r["text"]})
        else:
            row["error"] = r["error"][:200]
            history.append({"role": "assistant", "content": ""})
        history.append({"role": "user", "content": "Here is the tool output:\n" + filler(s * 100 + t, append_chars)}
                       if t % 2 == 0 else {"role": "user", "content": "Continue. " + filler(s * 1000 + t, 200)})
        with results_lock:
            results.append(row)


def run_group(first, end):
    failures = []

    def one(k):
        try:
            run_session(k)
        except Exception as e:  # noqa: BLE001 — re-raised below, like Promise.all
            failures.append(e)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(first, end)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if failures:
        raise failures[0]


t0 = now_ms()
stats0 = server.get_json("/v1/cache")
for s in range(0, sessions, concurrency):
    run_group(s, min(sessions, s + concurrency))
wall_s = (now_ms() - t0) / 1000
metrics = server.get_text("/metrics")
m = re.search(r"^larder_resident_memory_peak_bytes (\d+)", metrics, re.M)
peak = int(m.group(1)) if m else 0
stats1 = server.get_json("/v1/cache")
busy_s = stats1["engine_busy_s"] - stats0["engine_busy_s"]
book_s = stats1["cache_bookkeeping_s"] - stats0["cache_bookkeeping_s"]
ok = [r for r in results if r["status"] == 200]
cold = [r for r in ok if r["turn"] == 0]
warm = [r for r in ok if r["turn"] > 0]


def mean(a):
    a = [v for v in a if v is not None]
    return sum(a) / len(a) if a else float("nan")


ideal_warm = sum(r["ideal_cached"] or 0 for r in warm)
cached_warm = sum(r["cached_tokens"] for r in warm)
summary = {
    "label": args.get("label") or "", "sessions": sessions, "turns": turns, "concurrency": concurrency,
    "requests": len(results), "ok": len(ok), "errors": len(results) - len(ok), "wall_s": num(wall_s, 2),
    "ttft_cold_ms": num(mean([r["ttft_ms"] for r in cold]), 1), "ttft_warm_ms": num(mean([r["ttft_ms"] for r in warm]), 1),
    "cached_ratio_vs_ideal": num(cached_warm / ideal_warm, 3) if ideal_warm else None,
    "prompt_tokens_total": sum(r["prompt_tokens"] for r in ok),
    "generated_tokens_total": sum(r["completion_tokens"] for r in ok),
    "peak_rss_mib": num(peak / 1048576, 1),
    "engine_busy_s": num(busy_s, 3), "cache_bookkeeping_s": num(book_s, 4),
    "cache_bookkeeping_fraction": num(book_s / busy_s, 5) if busy_s > 0 else None,
}
summary["prompt_tok_per_s"] = num(summary["prompt_tokens_total"] / wall_s, 1)
if args.get("json"):
    print(dumps({"summary": summary, "turns": results}))
else:
    for r in results:
        print(dumps(r))
    print(dumps(summary))
