// test_generate_llamacpp.mjs — greedy `larder generate` continues a prompt
// exactly as llama.cpp does (node-llama-cpp, temperature 0: the greedy
// sampler alone), for 24 tokens, on F32 random-weight models of each
// architecture: llama (with rope_freqs), qwen2 (tied output, qwen2
// vocabulary), qwen3 (head size != dim/heads) and the mixtures of experts
// qwen3moe and minimax-m2.
//
// A greedy path is only well defined where the top two candidates are not
// tied within float rounding: each case also checks that llama.cpp's top-2
// gap along its own path is at least MIN_GAP (so a mismatch is larder's
// error, not a coin toss) and reports the smallest gap.
import {execFileSync} from "node:child_process";
import {mkdirSync} from "node:fs";
import {openLlama, llamaGreedy, llamaTopK} from "../oracle/llama_probs.mjs";

const LARDER = process.env.LARDER, SHARED = process.env.SHARED;
const TMP = (process.env.TEST_TMP || "/tmp") + "/generate_llamacpp";
mkdirSync(TMP, {recursive: true});
const V = `${SHARED}/vocab`;
const THREADS = "2";
const GEN_TOKENS = 24;
// llama.cpp's top-2 probability gap that makes a greedy step unambiguous: twice
// the F32 agreement tolerance (each of the two probabilities may move by 2e-3).
// The seeds below were chosen so that every step clears it (smallest gaps
// 0.036, 0.049, 0.033, 0.065, 0.021).
const MIN_GAP = 4e-3;

const SHAPE = ["--dim", "256", "--ff", "512", "--heads", "4", "--kv-heads", "2", "--layers", "2", "--type", "f32"];
const CASES = [
  // name, arch, vocab, extra flags, prompt ids (valid in the case's vocabulary)
  ["llama", "llama", "llama-spm", ["--rope-freqs", "--seed", "28"], [1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203]],
  ["qwen2", "qwen2", "qwen2", ["--tied", "--seed", "34"], [785, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13]],
  ["qwen3", "qwen3", "llama-spm", ["--head-dim", "128", "--seed", "43"], [1, 3439, 17443, 29892, 10575, 2215, 29892, 6501, 9750]],
  ["qwen3moe", "qwen3moe", "llama-spm", ["--head-dim", "128", "--experts", "16", "--experts-used", "4", "--ff-exp", "128", "--seed", "14"],
   [1, 3439, 17443, 29892, 10575, 2215, 29892, 6501, 9750]],
  ["minimax-m2", "minimax-m2", "llama-spm", ["--head-dim", "64", "--rot", "32", "--experts", "16", "--experts-used", "4", "--seed", "11"],
   [1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203]],
];

let failed = 0;
const pass = (n, why) => console.log(`PASS ${n}: ${why}`);
const fail = (n, why) => { failed++; console.log(`FAIL ${n}: ${why}`); };
const run = (cmd, args) => execFileSync(cmd, args, {encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 26});
const firstLine = (e) => String(e.stderr || e.message).trim().split("\n")[0];

const llama = await openLlama();
for (const [label, arch, vocab, extra, prompt] of CASES) {
  const name = `greedy ${label}-f32 (${GEN_TOKENS} tokens)`;
  const file = `${TMP}/${label}-f32.gguf`;
  try {
    run(LARDER, ["make-model", "--arch", arch, "--vocab", `${V}/ggml-vocab-${vocab}.gguf`, ...SHAPE, ...extra,
      "--threads", THREADS, "--quiet", "--out", file]);
    const want = await llamaGreedy(llama, file, prompt, GEN_TOKENS, {threads: Number(THREADS)});
    // llama.cpp's own confidence along its path: the smallest top-2 gap.
    const path = [...prompt, ...want.slice(0, -1)];
    const steps = await llamaTopK(llama, file, path, {top: 2, positions: path.map((_, i) => i).slice(prompt.length - 1)});
    let minGap = 1, minAt = -1;
    steps.forEach((s, k) => { const g = s.top[0][1] - s.top[1][1]; if (g < minGap) { minGap = g; minAt = k; } });

    const out = JSON.parse(run(LARDER, ["generate", "--model", file, "--tokens", prompt.join(","), "--max-tokens", String(GEN_TOKENS),
      "--temperature", "0", "--json"]));
    if (!Array.isArray(out.tokens)) throw new Error(`larder generate --json: no tokens array in ${JSON.stringify(out).slice(0, 100)}`);
    if (out.prompt_tokens !== undefined && out.prompt_tokens !== prompt.length && JSON.stringify(out.prompt_tokens) !== JSON.stringify(prompt))
      throw new Error(`prompt_tokens ${JSON.stringify(out.prompt_tokens)} for a ${prompt.length}-token prompt`);
    const got = out.tokens;
    const k = want.findIndex((t, i) => got[i] !== t);
    const detail = `smallest llama.cpp top-2 gap ${minGap.toFixed(4)} at step ${minAt}`;
    if (minGap < MIN_GAP) fail(name, `ill-posed case: llama.cpp's path has a near tie (${detail}); change the seed or prompt`);
    else if (k >= 0 || got.length !== want.length)
      fail(name, `differs from step ${k >= 0 ? k : Math.min(got.length, want.length)}: larder ${JSON.stringify(got)}, llama.cpp ${JSON.stringify(want)} (${detail})`);
    else pass(name, `${want.length} tokens equal (${detail})`);
  } catch (e) { fail(name, firstLine(e)); }
}
process.exit(failed ? 1 : 0);
