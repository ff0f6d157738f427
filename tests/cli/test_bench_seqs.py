#!/usr/bin/env python3
"""test_bench_seqs.py — `larder bench --seqs LIST` (src/cli/bench_seqs.c) on
small `larder make-model` files (f32 weights): one row per N in text and
JSON; the batch is real and correct: with --greedy, sequence i of an N-token
decode batch generates exactly the tokens it generates alone (--seqs 1
--first-seq i), for a dense GQA model and a mixture of experts, and the N
sequences generate different tokens (distinct prompts); --prompt-tokens 4096
runs; a KV pool too small for N x (prompt + gen) and bad lists are clear
errors (exit 1, a message), not crashes.
"""
import json
import os
import subprocess
import sys

LARDER = os.environ.get("LARDER", "build/larder")
SHARED = os.environ.get("SHARED", "../shared")
TMP = os.path.join(os.environ.get("TEST_TMP", "/tmp"), "bench_seqs")
os.makedirs(TMP, exist_ok=True)
failed = 0


def check(name, ok, why=""):
    global failed
    if ok:
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {why}")


def larder(*args):
    return subprocess.run([LARDER, *args], capture_output=True, text=True, timeout=600)


def bench_json(model, *args):
    p = larder("bench", "--model", model, "--threads", "2", "--json", *args)
    if p.returncode != 0:
        raise RuntimeError(f"bench {' '.join(args)}: rc {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)


VOCAB = f"{SHARED}/vocab/ggml-vocab-llama-spm.gguf"
MODELS = {
    "dense": ["--arch", "llama", "--dim", "128", "--ff", "256", "--heads", "4", "--kv-heads", "2", "--layers", "2"],
    "moe": ["--arch", "qwen3moe", "--dim", "128", "--ff", "256", "--heads", "4", "--kv-heads", "2", "--layers", "2",
            "--head-dim", "64", "--experts", "8", "--experts-used", "2", "--ff-exp", "64"],
}
paths = {}
for name, shape in MODELS.items():
    path = os.path.join(TMP, f"{name}.gguf")
    p = larder("make-model", "--vocab", VOCAB, "--type", "f32", "--seed", "7", "--out", path, *shape)
    if p.returncode != 0:
        print(f"FAIL make-model {name}: {p.stderr.strip()}")
        sys.exit(1)
    paths[name] = path
dense = paths["dense"]

# one row per N, text and JSON, with consistent figures
p = larder("bench", "--model", dense, "--threads", "2", "--seqs", "1,3,8", "--prompt-tokens", "48", "--gen-tokens", "6")
rows = [l for l in p.stdout.splitlines() if l.startswith("larder: ")]
check("text: one row per N", p.returncode == 0 and [r.split()[1] for r in rows] == ["1", "3", "8"]
      and all("decode" in r and "aggregate" in r and "per sequence" in r and "read per token" in r for r in rows),
      p.stdout + p.stderr)
j = bench_json(dense, "--seqs", "1,3,8", "--prompt-tokens", "48", "--gen-tokens", "6")
ns = [r["seqs"] for r in j["rows"]]
check("json: one row per N", ns == [1, 3, 8], ns)
ok = all(r["prefill_tok_s"] > 0 and r["decode_tok_s"] > 0 and abs(r["decode_tok_s_per_seq"] * r["seqs"] - r["decode_tok_s"])
         <= 0.02 * r["decode_tok_s"] + 0.05 for r in j["rows"])
check("json: positive speeds, per-sequence = aggregate / N", ok, j["rows"])
b = [r["decode_bytes_per_token"] for r in j["rows"]]
check("json: bytes per token fall as N shares a step's weights", b[0] > b[1] > b[2] and
      abs(b[0] - (j["decode_weight_bytes_per_step"] + j["kv_bytes_per_token"] * (48 + 3.5))) < 2, b)

# batched greedy decode == each sequence alone
for name, path in paths.items():
    N, gen = 5, 12
    batch = bench_json(path, "--seqs", str(N), "--greedy", "--prompt-tokens", "40", "--gen-tokens", str(gen))["rows"][0]
    toks = batch["tokens"]
    check(f"{name}: greedy batch lists N x gen tokens", len(toks) == N and all(len(t) == gen for t in toks), toks)
    check(f"{name}: the sequences' prompts differ (their tokens do)", len({tuple(t) for t in toks}) == N, toks)
    for i in range(N):
        alone = bench_json(path, "--seqs", "1", "--first-seq", str(i), "--greedy", "--prompt-tokens", "40",
                           "--gen-tokens", str(gen))["rows"][0]["tokens"][0]
        check(f"{name}: sequence {i} of the batch decodes what it decodes alone", alone == toks[i],
              f"batch {toks[i]} alone {alone}")
    # a second row of the same run reuses the pool: the same tokens again
    two = bench_json(path, "--seqs", f"2,{N}", "--greedy", "--prompt-tokens", "40", "--gen-tokens", str(gen))["rows"]
    check(f"{name}: rows of one run agree", two[0]["tokens"] == toks[:2] and two[1]["tokens"] == toks,
          two)

# long prompts
j = bench_json(dense, "--seqs", "2", "--prompt-tokens", "4096", "--gen-tokens", "4")
check("--prompt-tokens 4096 runs", j["prompt_tokens"] == 4096 and j["rows"][0]["decode_tok_s"] > 0, j)

# errors: clear, exit 1, no crash
for name, args, want in [
    ("kv-memory too small", ["--seqs", "64", "--prompt-tokens", "4096", "--kv-memory", "1M"], "need"),
    ("more KV than the machine", ["--seqs", "4096", "--prompt-tokens", "65536", "--gen-tokens", "65536"], "need"),
    ("bad list", ["--seqs", "1,,2"], "--seqs"),
    ("zero sequences", ["--seqs", "0"], "--seqs"),
    ("too many entries", ["--seqs", ",".join(["1"] * 17)], "--seqs"),
    ("--greedy without --seqs", ["--greedy"], "--seqs"),
]:
    p = larder("bench", "--model", dense, "--threads", "2", *args)
    check(f"error: {name}", p.returncode == 1 and want in p.stderr and p.stdout == "",
          f"rc {p.returncode} stdout {p.stdout!r} stderr {p.stderr!r}")

sys.exit(1 if failed else 0)
