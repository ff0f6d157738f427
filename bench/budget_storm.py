#!/usr/bin/env python3
"""budget_storm.py — bench/budget_storm.mjs in python3's standard library
(for machines without node): issue 5's budget target, N concurrent two-turn
conversations of ~1.7k tokens each (one thread each) against a server whose
--kv-memory holds far less than their total. Reports how many complete, how
many 503s were retried, wall time, and resident memory growth (peak -
baseline after a warm-up request) against the KV budget. Same prompts,
requests and printed line as the .mjs.
usage: python3 bench/budget_storm.py --url URL [--conversations 24] [--words 1300]
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import Server, dumps, lcg, now_ms, num, parse_args  # noqa: E402

args = parse_args(sys.argv[1:])
server = Server(args.get("url") or "http://127.0.0.1:8080")
n = int(args.get("conversations") or 24)
words = int(args.get("words") or 1300)
VOCAB = ["the", "cache", "page", "server", "model", "token", "agent", "tool", "file", "memory", "budget", "prompt"]


def text(seed, k):
    x, out = float(seed), []
    for _ in range(k):
        x = lcg(x)
        out.append(VOCAB[int(x) % len(VOCAB)])
    return " ".join(out)


lock = threading.Lock()
counts = {"retries503": 0, "errors": 0, "completed": 0}


def complete(prompt):
    while True:
        status, body = server.post("/v1/completions", {"prompt": prompt, "max_tokens": 16, "temperature": 0})
        if status == 503:
            with lock:
                counts["retries503"] += 1
            time.sleep(0.2)
            continue
        if status != 200:
            with lock:
                counts["errors"] += 1
            raise RuntimeError(body)
        return json.loads(body)["choices"][0]["text"]


def conversation(i):
    try:
        p1 = text(1000 + i, words)
        a = complete(p1)
        complete(p1 + a + " " + text(5000 + i, 60))
        with lock:
            counts["completed"] += 1
    except Exception as e:  # noqa: BLE001 — reported like the .mjs, the others go on
        print(str(e)[:200], file=sys.stderr)


complete("warm up")
rss0 = server.metric("larder_resident_memory_bytes")
budget = server.metric("larder_kv_pool_bytes_total")
t0 = now_ms()
threads = [threading.Thread(target=conversation, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = (now_ms() - t0) / 1000
peak = server.metric("larder_resident_memory_peak_bytes")
print(dumps({"conversations": n, "completed": counts["completed"], "errors": counts["errors"],
             "retries503": counts["retries503"], "wall_s": num(wall, 1), "kv_budget_mib": num(budget / 1048576, 1),
             "rss_growth_mib": num((peak - rss0) / 1048576, 1),
             "preemptions": num(server.metric("larder_preemptions_total"))}))
