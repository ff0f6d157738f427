"""Checks the GGUF exporter without a GPU or PyTorch: writes a tiny random
Llama model with gguf_export.py and computes, in numpy (float64), the same
held-out perplexity that train.py defines, over the given tokens. Compare
its output with `node tools/train/llama_ppl.mjs OUT.gguf TOKENS.bin 2`, and
run `node tools/train/check_export.mjs OUT.gguf`, which compares llama.cpp's
logits with OUT.gguf.expect.json (numpy's, at a few positions): agreement
means tensor layout, names, rope pairing and Q8_0 blocks are what llama.cpp
reads. Use the `f32` mode for that verdict (relative logit error ~1e-3,
2.5e-4 seen): with Q8_0 matrices llama.cpp also quantises activations to 8
bits, and these random, high-gain weights amplify that into errors of a few
percent (up to ~20% late in the sequence) that say nothing about the layout;
the trained model's Q8_0 file agrees with train.py's perplexity to 0.02%.

    python3 tools/train/check_export.py VOCAB.gguf TOKENS.bin OUT.gguf [f32]
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_export  # noqa: E402

WINDOW = 1023
BOS_ID = 1


def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, theta):
    # x: [T, H, hd]; pairs (x[2i], x[2i+1]) rotated by p * theta^(-2i/hd)
    T, _, hd = x.shape
    ang = np.arange(T)[:, None] * theta ** (-np.arange(0, hd, 2) / hd)[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def forward(cfg, w, toks):
    T = len(toks)
    H, D = cfg["n_heads"], cfg["dim"]
    hd = D // H
    x = w["token_embd.weight"][toks]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(cfg["n_layers"]):
        p = "blk.%d." % i
        h = rms(x, w[p + "attn_norm.weight"], cfg["norm_eps"])
        q = rope((h @ w[p + "attn_q.weight"].T).reshape(T, H, hd), cfg["rope_theta"])
        k = rope((h @ w[p + "attn_k.weight"].T).reshape(T, H, hd), cfg["rope_theta"])
        v = (h @ w[p + "attn_v.weight"].T).reshape(T, H, hd)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        a = np.einsum("hts,shd->thd", att, v).reshape(T, D)
        x = x + a @ w[p + "attn_output.weight"].T
        h = rms(x, w[p + "ffn_norm.weight"], cfg["norm_eps"])
        g = h @ w[p + "ffn_gate.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w[p + "ffn_up.weight"].T)) @ w[p + "ffn_down.weight"].T
    return rms(x, w["output_norm.weight"], cfg["norm_eps"]) @ w["token_embd.weight"].T


def main():
    vocab, tok_path, out = sys.argv[1:4]
    exact = len(sys.argv) > 4 and sys.argv[4] == "f32"     # F32 matrices: no Q8_0 noise
    cfg = dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=4, ffn_dim=96, vocab_size=32000,
               context_length=1024, rope_theta=10000.0, norm_eps=1e-5)
    rng = np.random.default_rng(1)
    D, F = cfg["dim"], cfg["ffn_dim"]
    w = {"token_embd.weight": rng.normal(0, 0.1, (cfg["vocab_size"], D)),
         "output_norm.weight": rng.uniform(0.5, 1.5, D)}
    for i in range(cfg["n_layers"]):
        p = "blk.%d." % i
        w[p + "attn_norm.weight"] = rng.uniform(0.5, 1.5, D)
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w[p + n + ".weight"] = rng.normal(0, 0.6 if n in ("attn_q", "attn_k") else 0.3, (D, D))
        w[p + "ffn_norm.weight"] = rng.uniform(0.5, 1.5, D)
        w[p + "ffn_gate.weight"] = rng.normal(0, 0.3, (F, D))
        w[p + "ffn_up.weight"] = rng.normal(0, 0.3, (F, D))
        w[p + "ffn_down.weight"] = rng.normal(0, 0.3, (D, F))
    w = {k: v.astype(np.float32) for k, v in w.items()}
    gguf_export.export_llama(out, cfg, w, vocab, "{{ messages[0]['content'] }}", name="check",
                             matrix_type=gguf_export.GGML_F32 if exact else gguf_export.GGML_Q8_0)
    wq = {k: (gguf_export.q8_0_roundtrip(v) if v.ndim == 2 and not exact else v).astype(np.float64)
          for k, v in w.items()}
    toks = np.fromfile(tok_path, dtype="<u2").astype(np.int64)[:2 * WINDOW]
    nll, n = 0.0, 0
    for s in range(0, len(toks), WINDOW):
        tgt = toks[s:s + WINDOW]
        inp = np.concatenate([[BOS_ID], tgt[:-1]])
        lg = forward(cfg, wq, inp)
        lg = lg - lg.max(-1, keepdims=True)
        lp = lg[np.arange(len(tgt)), tgt] - np.log(np.exp(lg).sum(-1))
        nll -= lp.sum()
        n += len(tgt)
    # Logits at a few positions of one short sequence, for check_export.mjs.
    inp = np.concatenate([[BOS_ID], toks[:63]])
    lg = forward(cfg, wq, inp)
    pos = [0, 1, 7, 30, 63]
    with open(out + ".expect.json", "w") as f:
        json.dump({"input": inp.tolist(), "positions": pos,
                   "logits": [lg[p].tolist() for p in pos]}, f)
    print(json.dumps({"tokens": n, "nll_sum": nll, "ppl": float(np.exp(nll / n))}))


if __name__ == "__main__":
    main()
