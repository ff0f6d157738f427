// llama_probs.mjs — llama.cpp as the oracle: its next-token probabilities at
// every position of a token sequence, and its greedy continuation, through
// node-llama-cpp's prebuilt CPU libllama.
//
// Key idea: `sequence.controlledEvaluate` decodes the whole input as one batch
// and asks for an output at each chosen position; each output is sampled with
// a chain that holds only the greedy sampler (temperature 0, no top-k/top-p/
// min-p, no penalties, no bias), which picks a token without filtering or
// rescaling the candidates, so the returned probabilities are the plain
// softmax of the raw logits over the whole vocabulary. Every distribution is
// checked: one entry per vocabulary token, all finite, summing to 1.
//
// As a module:
//   import {openLlama, llamaTopK, llamaGreedy} from "../oracle/llama_probs.mjs";
//   const llama = await openLlama();
//   const rows = await llamaTopK(llama, file, tokens, {top: 40, positions: [0, 5]});
//       rows[i] = {pos, top: [[id, p], ...] (highest first), sum, nVocab}
//   const ids = await llamaGreedy(llama, file, tokens, 24);
// As a command (same output shape as `larder logits`: one JSON line per
// position with the top K [[id, probability], ...]):
//   node tests/oracle/llama_probs.mjs --model F --tokens 1,2,3 [--top K]
//        [--positions 0,4,9] [--threads N] [--greedy N] [--kv-type f16|f32]
// With --greedy N it prints one JSON array: the N greedily generated ids.
import {useLarderMatchingVariant} from "./llama_cpu_variant.mjs";

// Context sizes: the context holds the input plus what greedy generation adds;
// one batch holds the whole input (the tests use short inputs).
const CONTEXT_TOKENS_MIN = 256;
const SUM_TOLERANCE = 1e-3; // float32 softmax over <= 152k entries sums to 1 within this

// llama.cpp in the CPU variant that sums as larder's active kernels do
// (llama_cpu_variant.mjs); node-llama-cpp is imported only after the choice.
export async function openLlama() {
  useLarderMatchingVariant();
  const {getLlama} = await import("node-llama-cpp");
  return getLlama({gpu: false, build: "never", logLevel: "error"});
}

// Loads the model and a single-sequence context; the caller disposes both.
async function openContext(llama, modelPath, nTokens, threads, kvType) {
  const model = await llama.loadModel({modelPath});
  const size = Math.max(CONTEXT_TOKENS_MIN, nTokens + 64);
  // KV cache in llama.cpp's default type (F16), as larder's default pool
  // type, unless kvType ("F32", "BF16", "Q8_0", "Q4_0") says otherwise.
  // llama.cpp stores a quantized V cache only with flash attention.
  const kv = kvType ? {experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType} : {};
  const context = await model.createContext({contextSize: size, batchSize: size, sequences: 1,
    threads: threads ?? 2, flashAttention: /^Q/.test(kvType ?? ""), ...kv});
  return {model, context, sequence: context.getSequence()};
}

// The vocabulary size, from the file's tokenizer.ggml.tokens array.
function vocabSize(model) {
  const n = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length;
  if (!Number.isInteger(n) || n <= 0) throw new Error("model has no tokenizer.ggml.tokens");
  return n;
}

function checkTokens(tokens, nVocab) {
  if (!Array.isArray(tokens) || tokens.length === 0) throw new Error("no tokens");
  for (const t of tokens)
    if (!Number.isInteger(t) || t < 0 || t >= nVocab) throw new Error(`token ${t} out of range [0, ${nVocab})`);
}

// Top `top` next-token probabilities at each position in `positions` (default:
// all). Throws when a distribution is not a full, normalised softmax.
export async function llamaTopK(llama, modelPath, tokens, {top = 10, positions, threads, kvType} = {}) {
  const {model, context, sequence} = await openContext(llama, modelPath, tokens.length, threads, kvType);
  try {
    const nVocab = vocabSize(model);
    checkTokens(tokens, nVocab);
    const want = new Set(positions ?? tokens.map((_, i) => i));
    const input = tokens.map((t, i) => want.has(i)
      ? [t, {generateNext: {probabilities: true, token: true, options: {temperature: 0}}}]
      : t);
    const out = await sequence.controlledEvaluate(input);
    const rows = [];
    for (let i = 0; i < tokens.length; i++) {
      if (!want.has(i)) continue;
      const probs = out[i]?.next?.probabilities;
      if (!probs) throw new Error(`no probabilities at position ${i}`);
      let sum = 0;
      for (const p of probs.values()) {
        if (!Number.isFinite(p) || p < 0) throw new Error(`position ${i}: probability ${p}`);
        sum += p;
      }
      if (probs.size !== nVocab) throw new Error(`position ${i}: ${probs.size} probabilities for ${nVocab} tokens (filtered?)`);
      if (Math.abs(sum - 1) > SUM_TOLERANCE) throw new Error(`position ${i}: probabilities sum to ${sum}`);
      const sorted = [...probs.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, top);
      rows.push({pos: i, top: sorted, sum, nVocab});
    }
    return rows;
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

// llama.cpp's greedy continuation of `tokens`: `n` ids (fewer if it produced
// an end-of-generation token, which is included, as larder includes it).
export async function llamaGreedy(llama, modelPath, tokens, n, {threads, kvType} = {}) {
  const {model, context, sequence} = await openContext(llama, modelPath, tokens.length + n, threads, kvType);
  try {
    checkTokens(tokens, vocabSize(model));
    const ids = [];
    for await (const t of sequence.evaluate(tokens, {temperature: 0})) {
      ids.push(t);
      if (ids.length >= n || model.isEogToken(t)) break;
    }
    return ids;
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

function parseIds(s, flag) {
  if (!/^\d+(,\d+)*$/.test(s ?? "")) throw new Error(`${flag}: want comma-separated ids, got ${JSON.stringify(s)}`);
  return s.split(",").map(Number);
}

async function main(argv) {
  const opt = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i], v = argv[i + 1];
    if (!["--model", "--tokens", "--top", "--positions", "--threads", "--greedy", "--kv-type"].includes(k) || v === undefined)
      throw new Error(`usage: llama_probs.mjs --model F --tokens IDS [--top K] [--positions P] [--threads N] [--greedy N] [--kv-type f16|f32] (bad ${k})`);
    opt[k.slice(2)] = v;
  }
  if (!opt.model || !opt.tokens) throw new Error("--model and --tokens are required");
  const tokens = parseIds(opt.tokens, "--tokens");
  const llama = await openLlama();
  const threads = opt.threads ? Number(opt.threads) : undefined;
  const kvType = opt["kv-type"] ? opt["kv-type"].toUpperCase() : undefined;
  if (opt.greedy) {
    console.log(JSON.stringify(await llamaGreedy(llama, opt.model, tokens, Number(opt.greedy), {threads, kvType})));
    return;
  }
  const rows = await llamaTopK(llama, opt.model, tokens, {top: opt.top ? Number(opt.top) : 10,
    positions: opt.positions ? parseIds(opt.positions, "--positions") : undefined, threads, kvType});
  for (const r of rows) console.log(JSON.stringify(r.top));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((e) => { console.error(`llama_probs: ${e.message}`); process.exit(1); });
}
