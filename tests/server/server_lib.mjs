// server_lib.mjs — shared helpers for the server tests: make a small model
// with a real chat template, start `larder serve` on a free loopback port,
// wait until /health answers, stop it, and report PASS/FAIL lines.
import { spawn, execFileSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import fs from "node:fs";

export const LARDER = process.env.LARDER;
export const SHARED = process.env.SHARED;
export const TMP = process.env.TEST_TMP || fs.mkdtempSync("/tmp/larder-srv-");

let failures = 0;
export async function check(name, fn) {
  try {
    await fn();
    console.log(`PASS ${name}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${(e && e.stack) || e}`);
  }
}
export function done() {
  process.exit(failures ? 1 : 0);
}
export function assert(cond, msg) {
  if (!cond) throw new Error(msg || "assertion failed");
}
export function assertEq(a, b, msg) {
  if (JSON.stringify(a) !== JSON.stringify(b))
    throw new Error(`${msg || "not equal"}: ${JSON.stringify(a)} !== ${JSON.stringify(b)}`);
}

// A qwen2-architecture model with Qwen2.5's vocabulary and chat template:
// small enough to run fast, real enough for templates and special tokens.
export function makeModel(name, extra = []) {
  const out = path.join(TMP, name);
  if (fs.existsSync(out)) return out;
  execFileSync(LARDER, ["make-model", "--arch", "qwen2",
    "--vocab", path.join(SHARED, "vocab/ggml-vocab-qwen2.gguf"),
    "--chat-template", path.join(SHARED, "templates/Qwen-Qwen2.5-7B-Instruct.jinja"),
    "--dim", "64", "--ff", "128", "--heads", "4", "--kv-heads", "2", "--layers", "2",
    "--ctx", "2048", "--type", "f32", "--seed", "7", "--out", out, ...extra], { stdio: "inherit" });
  return out;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

// Starts `larder serve`; resolves to {url, port, proc, log(), stop()}.
export async function startServer(model, args = []) {
  const port = await freePort();
  const logs = [];
  const proc = spawn(LARDER, ["serve", "--model", model, "--host", "127.0.0.1", "--port", String(port),
    "--threads", "2", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (d) => logs.push(d.toString()));
  proc.stderr.on("data", (d) => logs.push(d.toString()));
  let exited = null;
  proc.on("exit", (code, sig) => { exited = { code, sig }; });
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (exited) throw new Error(`server exited early (${JSON.stringify(exited)}):\n${logs.join("")}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) break;
    } catch {}
    if (Date.now() - t0 > 60000) throw new Error(`server did not start:\n${logs.join("")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url, port, proc,
    log: () => logs.join(""),
    alive: () => !exited,
    stop: async () => {
      if (exited) return exited;
      proc.kill("SIGTERM");
      for (let i = 0; i < 100 && !exited; i++) await new Promise((r) => setTimeout(r, 50));
      if (!exited) proc.kill("SIGKILL");
      return exited;
    },
  };
}

// Raw HTTP (for malformed bodies the openai client would never send).
export async function raw(url, method, pathname, body, headers = {}) {
  const r = await fetch(url + pathname, { method, body, headers: { "Content-Type": "application/json", ...headers } });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

// A model that writes a fixed answer: makeModel's network with its weights
// rewritten into a deterministic bigram chain, so that after the prompt's
// last token (`start`, "\n" for ChatML's "<|im_start|>assistant\n") it
// generates exactly the token ids `chain` (distinct, and none equal to
// start; the last usually the end-of-turn token) at any temperature. Every
// block's output projections are zeroed, so the last hidden state is the
// current token's embedding; token chain[k-1] (start for k = 0) gets the
// one-hot embedding e_k and chain[k]'s output row is 10 * e_k, every other
// output row 0. The engine runs the real forward pass over it; only the
// weights are designed. At most --dim (64) tokens.
export function makeScriptedModel(name, chain, start = 198, extra = []) {
  return makeScriptedModelChains(name, [{ start, chain }], extra);
}

// makeScriptedModel with several chains: after chain i's `start` token the
// model writes chain i. Chains may share tokens where they agree on the next
// one (every token is followed by one token only); at most --dim (64)
// transitions in all.
export function makeScriptedModelChains(name, chains, extra = []) {
  const out = path.join(TMP, name);
  if (fs.existsSync(out)) return out;
  const next = new Map();
  for (const { start, chain } of chains) {
    const prev = [start, ...chain.slice(0, -1)];
    prev.forEach((tok, k) => {
      if (next.has(tok) && next.get(tok) !== chain[k])
        throw new Error(`scripted token ${tok} is followed by both ${next.get(tok)} and ${chain[k]}`);
      next.set(tok, chain[k]);
    });
  }
  const base = makeModel(`${name}.base`, extra);
  const dim = 64;
  if (next.size > dim) throw new Error(`a scripted model holds at most ${dim} transitions`);
  const info = execFileSync(LARDER, ["gguf-info", base]).toString();
  const tensors = {};
  let end = 0;
  for (const m of info.matchAll(/^\s+(\S+)\s+f32\s+\[([\d, ]+)\]\s+offset (\d+)\s+(\d+) bytes/gm)) {
    tensors[m[1]] = { offset: Number(m[3]), bytes: Number(m[4]) };
    end = Math.max(end, Number(m[3]) + Number(m[4]));
  }
  const buf = fs.readFileSync(base);
  const dataStart = buf.length - end;
  if (dataStart <= 0 || dataStart % 32 || !tensors["output.weight"]) throw new Error(`unexpected layout of ${base}`);
  const f32 = (t) => new Float32Array(buf.buffer, buf.byteOffset + dataStart + tensors[t].offset, tensors[t].bytes / 4);
  for (const [t, v] of Object.entries(tensors))
    if (/attn_output\.weight|ffn_down\.weight|output\.weight/.test(t)) f32(t).fill(0);
  f32("output_norm.weight").fill(1);
  const embd = f32("token_embd.weight"), outw = f32("output.weight");
  [...next.entries()].forEach(([tok, nxt], k) => {
    embd.fill(0, tok * dim, (tok + 1) * dim);
    embd[tok * dim + k] = 1;
    outw[nxt * dim + k] = 10;
  });
  fs.writeFileSync(out, buf);
  return out;
}
