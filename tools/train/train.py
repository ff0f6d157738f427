"""Trains larder's default model: a small Llama-architecture LM on the Brown
corpus, and exports it as GGUF (Q8_0) with tools/train/gguf_export.py.

Owns: the model (RMSNorm, interleaved-pair rotary embedding, causal
multi-head attention, SwiGLU FFN, output tied to the token embedding), the
training loop (AdamW, warmup + cosine, bf16 autocast, dropout, best-on-val
checkpoint) and the held-out perplexity that the model card reports.

Key idea: the math is exactly what llama.cpp's `llama` architecture computes,
so the GGUF holds the trained tensors unchanged. In particular rotary
embedding rotates the pairs (x[2i], x[2i+1]) by pos * theta^(-2i/head_dim)
(llama.cpp's "normal" rope mode), so Q/K need no HF-style permutation.

Held-out perplexity (the model card's definition; larder's `perplexity` must
reproduce it): T = test.bin, the llama.cpp tokenisation of
`node tools/train/corpus.mjs text test` with no BOS. Cut T into consecutive
windows of 1023 tokens (the last may be shorter). Each window is evaluated
alone as [BOS] + window (at most 1024 positions, positions from 0), and every
window token is scored by the log-probability the model gives it from the
positions before it. PPL = exp(-(sum of all len(T) log-probabilities) / len(T)).
The reported figure uses the exported weights (Q8_0 matrices dequantised,
F32 norms), computed in float32.

Usage (GPU machine): python3 tools/train/train.py --data DIR --out DIR
Data comes from `node tools/train/corpus.mjs prepare DIR`.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_export  # noqa: E402

BOS_ID = 1
EVAL_WINDOW_TOKENS = 1023     # scored tokens per window; + BOS = 1024 positions


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # y = x / sqrt(mean(x^2) + eps) * w, in float32
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


def rope_tables(head_dim, n_pos, theta, device):
    # angle[p, i] = p * theta^(-2i/head_dim), i over head_dim/2 pairs
    inv = theta ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float64) / head_dim)
    ang = torch.arange(n_pos, device=device, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    # x: [B, H, T, hd]; rotate interleaved pairs (x0, x1) = (x[2i], x[2i+1]):
    # x0' = x0 cos - x1 sin ; x1' = x0 sin + x1 cos
    xf = x.float().unflatten(-1, (-1, 2))
    x0, x1 = xf[..., 0], xf[..., 1]
    c, s = cos[: x.shape[2]], sin[: x.shape[2]]
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)
    return out.to(x.dtype)


class Block(nn.Module):
    def __init__(self, cfg, dropout):
        super().__init__()
        d, self.nh = cfg["dim"], cfg["n_heads"]
        self.hd = d // self.nh
        self.attn_norm = RMSNorm(d, cfg["norm_eps"])
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.ffn_norm = RMSNorm(d, cfg["norm_eps"])
        self.w_gate = nn.Linear(d, cfg["ffn_dim"], bias=False)
        self.w_up = nn.Linear(d, cfg["ffn_dim"], bias=False)
        self.w_down = nn.Linear(cfg["ffn_dim"], d, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, cos, sin):
        B, T, D = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)   # scale 1/sqrt(hd)
        x = x + self.drop(self.wo(a.transpose(1, 2).reshape(B, T, D)))
        h = self.ffn_norm(x)
        return x + self.drop(self.w_down(F.silu(self.w_gate(h)) * self.w_up(h)))


class Llama(nn.Module):
    def __init__(self, cfg, dropout=0.0):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg["vocab_size"], cfg["dim"])
        self.blocks = nn.ModuleList(Block(cfg, dropout) for _ in range(cfg["n_layers"]))
        self.norm = RMSNorm(cfg["dim"], cfg["norm_eps"])
        self.drop = nn.Dropout(dropout)
        self.cos = self.sin = None
        std = 0.02
        for n, p in self.named_parameters():
            if p.dim() == 2:
                s = std / math.sqrt(2 * cfg["n_layers"]) if n.endswith(("wo.weight", "w_down.weight")) else std
                nn.init.normal_(p, 0.0, s)

    def forward(self, idx):
        T = idx.shape[1]
        if self.cos is None or self.cos.device != idx.device or self.cos.shape[0] < T:
            hd = self.cfg["dim"] // self.cfg["n_heads"]
            self.cos, self.sin = rope_tables(hd, max(T, self.cfg["context_length"]),
                                             self.cfg["rope_theta"], idx.device)
        x = self.drop(self.tok(idx))
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        return F.linear(self.norm(x), self.tok.weight)            # tied output

    def gguf_weights(self):
        """{gguf tensor name: float32 numpy array in PyTorch shape}."""
        g = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
        w = {"token_embd.weight": g(self.tok.weight), "output_norm.weight": g(self.norm.weight)}
        for i, b in enumerate(self.blocks):
            p = "blk.%d." % i
            w[p + "attn_norm.weight"] = g(b.attn_norm.weight)
            w[p + "attn_q.weight"] = g(b.wq.weight)
            w[p + "attn_k.weight"] = g(b.wk.weight)
            w[p + "attn_v.weight"] = g(b.wv.weight)
            w[p + "attn_output.weight"] = g(b.wo.weight)
            w[p + "ffn_norm.weight"] = g(b.ffn_norm.weight)
            w[p + "ffn_gate.weight"] = g(b.w_gate.weight)
            w[p + "ffn_up.weight"] = g(b.w_up.weight)
            w[p + "ffn_down.weight"] = g(b.w_down.weight)
        return w

    def load_q8_0_roundtrip(self):
        """Replaces every 2-D weight by what the Q8_0 GGUF holds."""
        with torch.no_grad():
            for _, p in self.named_parameters():
                if p.dim() == 2:
                    p.copy_(torch.from_numpy(gguf_export.q8_0_roundtrip(p.float().cpu().numpy())))


@torch.no_grad()
def heldout_nll(model, tokens, autocast, batch=16):
    """Sum of -log p over all tokens under the windowing in the module doc;
    returns (sum_nll, n_tokens). tokens: 1-D int64 tensor on the device."""
    model.eval()
    W = EVAL_WINDOW_TOKENS
    starts = list(range(0, tokens.numel(), W))
    total, count = 0.0, 0
    for i in range(0, len(starts), batch):
        group = starts[i:i + batch]
        full = [s for s in group if s + W <= tokens.numel()]
        parts = [full] if full else []
        parts += [[s] for s in group if s + W > tokens.numel()]   # short last window alone
        for part in parts:
            n = min(W, tokens.numel() - part[0])
            tgt = torch.stack([tokens[s:s + n] for s in part])              # [B, n]
            bos = torch.full((len(part), 1), BOS_ID, dtype=tgt.dtype, device=tgt.device)
            inp = torch.cat([bos, tgt[:, :-1]], dim=1)                       # [B, n]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                logits = model(inp)
            lp = F.log_softmax(logits.double(), dim=-1).gather(-1, tgt[..., None])
            total += -lp.sum().item()
            count += tgt.numel()
    model.train()
    return total, count


def train_one(cfg, hp, data, val, dev, log, time_limit_s):
    torch.manual_seed(hp["seed"])
    model = Llama(cfg, hp["dropout"]).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    nodecay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["wd"]},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=hp["lr"], betas=(0.9, 0.95), fused=True)
    T, B, steps = cfg["context_length"], hp["batch"], hp["steps"]
    gen = torch.Generator(device=dev).manual_seed(hp["seed"])
    best = (float("inf"), None, 0)
    t0 = time.time()
    tokens_seen = 0
    train_loss = float("nan")
    for step in range(1, steps + 1):
        warm = hp["warmup"]
        lr = hp["lr"] * (step / warm if step <= warm else
                         0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / (steps - warm))))
        for gopt in opt.param_groups:
            gopt["lr"] = lr
        ix = torch.randint(0, data.numel() - T - 1, (B,), device=dev, generator=gen)
        off = torch.arange(T + 1, device=dev)
        chunk = data[ix[:, None] + off[None, :]]
        x, y = chunk[:, :-1], chunk[:, 1:]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += B * T
        if step % 10 == 0:
            train_loss = 0.9 * train_loss + 0.1 * loss.item() if train_loss == train_loss else loss.item()
        if step % hp["eval_every"] == 0 or step == steps:
            s, n = heldout_nll(model, val, autocast=True)
            vl = s / n
            el = time.time() - t0
            log("  step %5d lr %.2e train %.4f val %.4f (ppl %.2f) %.0fs" %
                (step, lr, train_loss, vl, math.exp(vl), el))
            if vl < best[0]:
                best = (vl, {k: v.detach().clone() for k, v in model.state_dict().items()},
                        step, train_loss, tokens_seen)
            if el > time_limit_s:
                log("  time limit reached")
                break
    model.load_state_dict(best[1])
    return model, {"n_params": n_params, "best_val_loss": best[0], "best_step": best[2],
                   "train_loss_at_best": best[3], "tokens_seen_at_best": best[4],
                   "steps_run": step, "train_seconds": time.time() - t0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", required=True, help="vocab GGUF to copy tokenizer keys from")
    ap.add_argument("--configs", default="tools/train/configs.json")
    ap.add_argument("--only", default=None, help="comma-separated config names to run")
    ap.add_argument("--time-limit", type=float, default=150.0, help="seconds per config")
    ap.add_argument("--split-mib", type=float, default=15.0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "a")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    dev = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    load = lambda n: torch.from_numpy(  # noqa: E731
        np.fromfile(os.path.join(args.data, n), dtype="<u2").astype(np.int64)).to(dev)
    data, val, test = load("train.bin"), load("val.bin"), load("test.bin")
    log("tokens: train %d val %d test %d; %s" % (data.numel(), val.numel(), test.numel(),
                                                 torch.cuda.get_device_name()))
    runs = json.load(open(args.configs))
    if args.only:
        keep = set(args.only.split(","))
        runs = [r for r in runs if r["name"] in keep]
    results = []
    best = None
    for r in runs:
        cfg, hp = r["model"], r["train"]
        log("== %s %s %s" % (r["name"], json.dumps(cfg), json.dumps(hp)))
        model, info = train_one(cfg, hp, data, val, dev, log, args.time_limit)
        info["name"] = r["name"]
        log("   %s" % json.dumps(info))
        results.append(info)
        if best is None or info["best_val_loss"] < best[1]["best_val_loss"]:
            best = (r, info, model)
        else:
            del model
        torch.cuda.empty_cache()

    r, info, model = best
    cfg = r["model"]
    log("== chosen %s" % r["name"])
    s, n = heldout_nll(model.float(), test, autocast=False)
    info["test_ppl_f32_weights"] = math.exp(s / n)
    s, n = heldout_nll(model, val, autocast=False)
    info["val_ppl_f32_weights"] = math.exp(s / n)
    model.load_q8_0_roundtrip()
    s, n = heldout_nll(model, test, autocast=False)
    info["test_nll_sum_q8_0"] = s
    info["test_tokens"] = n
    info["test_ppl_q8_0"] = math.exp(s / n)
    # First 8 windows only (8184 tokens): a cheaper check for CPU tests.
    s8, n8 = heldout_nll(model, test[:8 * EVAL_WINDOW_TOKENS], autocast=False)
    info["test_ppl_q8_0_first8"] = math.exp(s8 / n8)
    info["test_tokens_first8"] = n8
    log("   %s" % json.dumps(info))

    template = open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "chat_template.jinja")).read()
    gguf_path = os.path.join("/tmp", "model.gguf")
    gguf_export.export_llama(gguf_path, cfg, model.gguf_weights(), args.vocab, template)
    size = os.path.getsize(gguf_path)
    part = int(args.split_mib * 1024 * 1024)
    with open(gguf_path, "rb") as f:
        i = 0
        while True:
            b = f.read(part)
            if not b:
                break
            open(os.path.join(args.out, "model.gguf.part%d" % i), "wb").write(b)
            i += 1
    summary = {"chosen": r, "result": info, "all": results, "gguf_bytes": size}
    json.dump(summary, open(os.path.join(args.out, "summary.json"), "w"), indent=1)
    log("gguf %d bytes in %d parts" % (size, i))


if __name__ == "__main__":
    main()
