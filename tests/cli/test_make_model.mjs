// test_make_model.mjs — files written by `larder make-model` for every
// architecture and weight type load in llama.cpp (node-llama-cpp), give finite,
// normalised and peaked next-token distributions, and read back with
// `larder gguf-info`; same seed gives the same bytes; presets have real shapes;
// mixtures of experts route a prompt's tokens to varied experts.
import {execFileSync} from "node:child_process";
import {readFileSync, mkdirSync, unlinkSync} from "node:fs";
import {getLlama} from "node-llama-cpp";

const LARDER = process.env.LARDER, SHARED = process.env.SHARED;
const TMP = (process.env.TEST_TMP || "/tmp") + "/make_model";
mkdirSync(TMP, {recursive: true});
let failed = 0;
const pass = (n) => console.log(`PASS ${n}`);
const fail = (n, why) => { failed++; console.log(`FAIL ${n}: ${why}`); };
const larder = (...args) => execFileSync(LARDER, args, {encoding: "utf8", stdio: ["ignore", "pipe", "pipe"]});

const V = `${SHARED}/vocab`;
const cases = [
  ["llama", "llama-spm", "f32", []], ["llama", "llama-spm", "f16", []], ["llama", "llama-spm", "bf16", []],
  ["llama", "llama-spm", "q8_0", []], ["llama", "llama-bpe", "q4_0", ["--rope-freqs", "--kv-heads", "1"]],
  ["llama", "llama-spm", "q4_1", []], ["llama", "llama-spm", "q5_0", []], ["llama", "llama-spm", "q5_1", []],
  ["llama", "llama-spm", "q4_k", []], ["llama", "llama-spm", "q5_k", []], ["llama", "llama-spm", "q6_k", []],
  ["llama", "llama-spm", "q4_k_m", ["--layers", "8"]], ["llama", "llama-spm", "q5_k_m", []],
  ["qwen2", "qwen2", "f32", []], ["qwen2", "qwen2", "q4_k_m", []],
  ["qwen3", "qwen2", "f16", ["--head-dim", "128", "--tied"]], ["qwen3", "qwen2", "q8_0", ["--tied"]],
  ["llama", "llama-spm", "q4_k", ["--dim", "160", "--heads", "5", "--kv-heads", "5"]], // 160 % 256 != 0: falls back like llama.cpp
];
// Mixtures of experts in every weight type: qwen3moe (softmax router, its
// own expert ff) and minimax-m2 (sigmoid scores with a selection bias,
// partial rope).
const QWEN3MOE = ["--head-dim", "128", "--experts", "16", "--experts-used", "4", "--ff-exp", "256"];
const MINIMAX = ["--head-dim", "64", "--rot", "32", "--experts", "16", "--experts-used", "4", "--ff", "256"];
for (const type of ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k", "q4_k_m", "q5_k_m"]) {
  cases.push(["qwen3moe", "llama-spm", type, QWEN3MOE]);
  if (["f32", "bf16", "q8_0", "q4_k", "q6_k", "q5_k_m"].includes(type)) cases.push(["minimax-m2", "llama-spm", type, MINIMAX]);
}

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
for (const [arch, vocab, type, extra] of cases) {
  const name = `${arch}-${type}${extra.length ? "-" + extra.join("").replace(/-/g, "") : ""}`;
  const out = `${TMP}/${name}.gguf`;
  try {
    const args = ["make-model", "--arch", arch, "--vocab", `${V}/ggml-vocab-${vocab}.gguf`, "--dim", "256", "--ff", "512",
      "--heads", "4", "--kv-heads", "2", "--layers", "2", "--type", type, "--seed", "7", "--threads", "2",
      "--quiet", "--out", out];
    // later flags override earlier ones
    larder(...args, ...extra);
    const info = larder("gguf-info", out);
    if (!info.includes(`general.architecture                         string  "${arch}"`)) throw new Error("gguf-info: no architecture");
    const model = await llama.loadModel({modelPath: out});
    const ctx = await model.createContext({contextSize: 64});
    const seq = ctx.getSequence();
    const n = model.tokens.length ?? 32000;
    const toks = [1, 450, 4996, 17354, 1701, 432, 17204, 975].map(t => t % 30000 + 1);
    let maxTop = 0, ok = true, why = "";
    for await (const r of seq.evaluateWithMetadata(toks, {probabilities: true})) {
      const probs = [...r.probabilities.values()];
      const sum = probs.reduce((a, b) => a + b, 0);
      if (!probs.every(Number.isFinite) || Math.abs(sum - 1) > 0.02 && probs.length > 1000) { ok = false; why = `sum ${sum}`; }
      maxTop = probs.reduce((a, b) => Math.max(a, b), maxTop);
      break;
    }
    await ctx.dispose(); await model.dispose();
    if (!ok) fail(name, why);
    else if (!(maxTop > 0.05)) fail(name, `flat distribution (top-1 ${maxTop})`);
    else pass(name);
  } catch (e) { fail(name, String(e.stderr || e.message).split("\n")[0]); }
}

// Determinism: the same flags and seed give identical bytes; another seed differs.
try {
  const a = `${TMP}/det-a.gguf`, b = `${TMP}/det-b.gguf`, c = `${TMP}/det-c.gguf`;
  const base = ["make-model", "--arch", "llama", "--vocab", `${V}/ggml-vocab-llama-spm.gguf`, "--dim", "256", "--ff", "256",
    "--heads", "2", "--layers", "1", "--type", "q4_k_m", "--quiet"];
  larder(...base, "--threads", "1", "--out", a);
  larder(...base, "--threads", "2", "--out", b);
  larder(...base, "--seed", "2", "--out", c);
  const A = readFileSync(a), B = readFileSync(b), C = readFileSync(c);
  if (!A.equals(B)) fail("same_seed_same_bytes", "files differ");
  else if (A.equals(C)) fail("same_seed_same_bytes", "another seed gave the same file");
  else pass("same_seed_same_bytes");
} catch (e) { fail("same_seed_same_bytes", String(e.stderr || e.message).split("\n")[0]); }

// Presets: real shapes (layers cut to 1 to stay fast).
for (const [preset, want] of [
  ["tinyllama-1.1b", ["llama.embedding_length                       u32     2048", "llama.feed_forward_length                    u32     5632",
                      "llama.attention.head_count_kv                u32     4", "\n  output.weight"]],
  ["llama3-8b", ["llama.embedding_length                       u32     4096", "rope_freqs.weight", "[string x 128256]",
                 "llama.rope.freq_base                         f32     500000"]],
  ["qwen3-0.6b", ["qwen3.attention.key_length                   u32     128", "blk.0.attn_q_norm.weight",
                  "qwen3.embedding_length                       u32     1024", "[string x 151936]"]],
  ["qwen3-30b-a3b", ["qwen3moe.expert_count                        u32     128", "qwen3moe.expert_used_count                   u32     8",
                     "qwen3moe.expert_feed_forward_length          u32     768", "[2048, 768, 128]", "[768, 2048, 128]",
                     "qwen3moe.attention.head_count_kv             u32     4", "ffn_gate_inp.weight         f32   [2048, 128]"]],
  ["minimax-m2", ["minimax-m2.expert_count                      u32     256", "minimax-m2.expert_gating_func                u32     2",
                  "minimax-m2.rope.dimension_count              u32     64", "[3072, 1536, 256]", "blk.0.exp_probs_b.bias",
                  "attn_q_norm.weight          f32   [6144]", "attn_k_norm.weight          f32   [1024]", "\n  output.weight"]],
  ["minimax-m2-reap50", ["minimax-m2.expert_count                      u32     128", "[3072, 1536, 128]",
                         "minimax-m2.rope.freq_base                    f32     5000000"]],
]) {
  const out = `${TMP}/${preset}.gguf`;
  try {
    larder("make-model", "--preset", preset, "--layers", "1", "--type", "q4_0", "--quiet", "--out", out);
    const info = larder("gguf-info", out).replace(/ +/g, " ");
    const miss = want.filter(w => !info.includes(w.replace(/ +/g, " ")));
    if (preset === "qwen3-0.6b" && /^\s+output\.weight/m.test(info)) miss.push("tied model has output.weight");
    if (miss.length) fail(`preset_${preset}`, `missing ${miss.join("; ")}`); else pass(`preset_${preset}`);
  } catch (e) { fail(`preset_${preset}`, String(e.stderr || e.message).split("\n")[0]); }
  try { unlinkSync(out); } catch {}
}

// Routing is varied: the router weights are scaled so that a prompt's tokens
// spread over the experts (in every layer at least half of them are used,
// and no expert takes more than 3/4 of the tokens; uniform would be k/E).
for (const [arch, vocab, extra] of [["qwen3moe", "llama-spm", [...QWEN3MOE, "--ff", "512"]], ["minimax-m2", "llama-bpe", MINIMAX]]) {
  const name = `routing_varied_${arch}`;
  try {
    const out = `${TMP}/${arch}-q8_0-routing.gguf`;
    larder("make-model", "--arch", arch, "--vocab", `${V}/ggml-vocab-${vocab}.gguf`, "--dim", "256", "--heads", "4",
      "--kv-heads", "2", "--layers", "4", "--type", "q8_0", "--seed", "7", "--quiet", "--out", out, ...extra);
    const r = JSON.parse(larder("bench", "--model", out, "--prompt-tokens", "256", "--gen-tokens", "1", "--threads", "2",
      "--expert-stats", "--json"));
    const why = `${r.experts_distinct_min} of ${r.experts} experts used at least, top share ${r.experts_top_share_max}`;
    if (r.experts_distinct_min >= r.experts / 2 && r.experts_top_share_max <= 0.75) pass(`${name}: ${why}`);
    else fail(name, why);
  } catch (e) { fail(name, String(e.stderr || e.message).split("\n")[0]); }
}

// Bad flags: one line on stderr, exit 1, no file.
for (const [name, args] of [
  ["bad_type", ["--type", "q3_x"]], ["bad_arch", ["--arch", "gpt9"]], ["kv_heads_not_divisor", ["--kv-heads", "3"]],
  ["missing_vocab_file", ["--vocab", "/nonexistent.gguf"]], ["bad_number", ["--dim", "12x"]],
  ["rope_freqs_not_in_arch", ["--arch", "qwen3", "--rope-freqs"]],
  ["experts_on_dense_arch", ["--experts", "8", "--experts-used", "2"]],
  ["moe_without_experts", ["--arch", "qwen3moe", "--head-dim", "16"]],
  ["experts_used_over_experts", ["--arch", "minimax-m2", "--head-dim", "16", "--experts", "4", "--experts-used", "5"]],
  ["rot_over_head", ["--rot", "32"]],
]) {
  const out = `${TMP}/bad-${name}.gguf`;
  const args0 = ["make-model", "--arch", "llama", "--vocab", `${V}/ggml-vocab-llama-spm.gguf`, "--dim", "64", "--ff", "64",
    "--heads", "4", "--layers", "1", "--out", out, ...args];
  try { larder(...args0); fail(name, "exit status 0"); }
  catch (e) {
    const lines = String(e.stderr).trim().split("\n");
    if (e.status === 1 && lines.length === 1 && lines[0].length > 10 && e.stdout === "") pass(name);
    else fail(name, `status ${e.status}, stderr ${JSON.stringify(e.stderr)}`);
  }
}
process.exit(failed ? 1 : 0);
