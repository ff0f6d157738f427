// llama.cpp's view of a GGUF, as a cross-check of train.py: held-out
// perplexity under the model card's definition, and a greedy continuation.
//
//   node tools/train/llama_ppl.mjs MODEL.gguf TOKENS.bin [MAX_WINDOWS] [PROMPT]
//
// TOKENS.bin: uint16 LE token ids (no BOS), e.g. .dev/train-data/test.bin.
// Definition (same as train.py): windows of 1023 tokens, each evaluated alone
// as [BOS] + window from position 0; every window token scored by
// log p(token | what precedes it in the window); PPL = exp(-mean log p).
// llama.cpp (node-llama-cpp, CPU) gives raw logits; log p = logit - max -
// log(sum exp(logit - max)).
import fs from "node:fs";
import { getLlama } from "node-llama-cpp";

const WINDOW_TOKENS = 1023;
const [modelPath, tokPath, maxWinArg, prompt] = process.argv.slice(2);
if (!modelPath || !tokPath) {
  console.error("usage: llama_ppl.mjs MODEL.gguf TOKENS.bin [MAX_WINDOWS] [PROMPT]");
  process.exit(2);
}
const buf = fs.readFileSync(tokPath);
const all = Array.from(new Uint16Array(buf.buffer, buf.byteOffset, buf.length / 2));
const maxWin = maxWinArg ? Number(maxWinArg) : Infinity;

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: 1024, batchSize: 1024, sequences: 1 });
const seq = context.getSequence();
const bos = model.tokens.bos;

let nll = 0, count = 0, windows = 0;
const t0 = Date.now();
for (let s = 0; s < all.length && windows < maxWin; s += WINDOW_TOKENS, windows++) {
  const tgt = all.slice(s, s + WINDOW_TOKENS);
  const inp = [bos, ...tgt.slice(0, -1)];
  await seq.clearHistory();
  const items = inp.map((t, i) => [t, { generateNext: {
    logits: { filter: { tokens: [tgt[i]], includeTop: 1 } }, totalLogitWeight: true } }]);
  const res = await seq.controlledEvaluate(items);
  for (let i = 0; i < tgt.length; i++) {
    const out = res[i].next;
    const vals = Array.from(out.logits.values());
    const maxLogit = Math.max(...vals);
    const lp = out.logits.get(tgt[i]) - maxLogit - Math.log(out.totalLogitWeight);
    if (!Number.isFinite(lp)) throw new Error(`non-finite log-prob at ${s + i}`);
    nll -= lp; count++;
  }
}
console.log(JSON.stringify({ windows, tokens: count, nll_sum: nll, ppl: Math.exp(nll / count),
  seconds: (Date.now() - t0) / 1000 }));

if (prompt) {
  await seq.clearHistory();
  const toks = [bos, ...model.tokenize(prompt, false)];
  const out = [];
  for await (const t of seq.evaluate(toks, { temperature: 0 })) {
    if (t === model.tokens.eos || out.length >= 60) break;
    out.push(t);
  }
  console.log(JSON.stringify({ prompt, continuation: model.detokenize(out) }));
}
await context.dispose();
await model.dispose();
