#!/usr/bin/env python3
"""followup_ttft.py — bench/followup_ttft.mjs in python3's standard library
(for machines without node): issue 5's follow-up target, a completion whose
prompt extends a cached ~3.5k-token prompt by ~50 tokens must start in
<= 1/50 of the cold time to first token. Streams both requests, timing the
first chunk. Same prompts, requests and printed line as the .mjs.
usage: python3 bench/followup_ttft.py --url URL [--words 2600] [--append-words 40]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_http import Server, dumps, lcg, now_ms, num, parse_args, read_chunks  # noqa: E402

args = parse_args(sys.argv[1:])
server = Server(args.get("url") or "http://127.0.0.1:8080")
words = int(args.get("words") or 2600)
append = int(args.get("append-words") or 40)
VOCAB = ["the", "cache", "page", "server", "model", "token", "agent", "tool", "file", "memory", "budget", "prompt"]
x = 7.0


def text(n):
    global x
    out = []
    for _ in range(n):
        x = lcg(x)
        out.append(VOCAB[int(x) % len(VOCAB)])
    return " ".join(out)


base = text(words)
tail = text(append)


def ttft(prompt):
    t0 = now_ms()
    conn, resp = server.request("POST", "/v1/completions", {
        "prompt": prompt, "max_tokens": 4, "temperature": 0, "stream": True,
        "stream_options": {"include_usage": True}})
    first, buf, usage = None, "", None
    try:
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
        for chunk in read_chunks(resp):
            buf += chunk
            if first is None and '"text"' in buf:
                first = now_ms() - t0
    finally:
        conn.close()
    for event in buf.split("\n\n"):  # the last usage object the stream carried
        event = event.strip()
        if event.startswith("data: ") and event != "data: [DONE]":
            j = json.loads(event[6:])
            if j.get("usage"):
                usage = j["usage"]
    if first is None:
        raise RuntimeError("the stream carried no text")
    return {"ttft_ms": num(first, 1), "usage": usage}


cold = ttft(base)
warm = ttft(base + " " + tail)
print(dumps({"cold": cold, "warm": warm, "ratio": num(warm["ttft_ms"] / cold["ttft_ms"], 4)}))
