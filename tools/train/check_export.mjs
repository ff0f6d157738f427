// Compares llama.cpp's logits for OUT.gguf with the numpy reference that
// check_export.py wrote to OUT.gguf.expect.json; prints the worst relative
// error per position and exits 1 above 2% (Q8_0 activations, f16 KV).
//   node tools/train/check_export.mjs OUT.gguf
import fs from "node:fs";
import { getLlama } from "node-llama-cpp";

const gguf = process.argv[2];
const exp = JSON.parse(fs.readFileSync(gguf + ".expect.json", "utf8"));
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath: gguf });
const context = await model.createContext({ contextSize: 1024, batchSize: 1024, sequences: 1 });
const seq = context.getSequence();
const want = new Set(exp.positions);
const res = await seq.controlledEvaluate(exp.input.map((t, i) =>
  want.has(i) ? [t, { generateNext: { logits: true } }] : t));
let worst = 0;
exp.positions.forEach((p, k) => {
  const ref = exp.logits[k];
  const got = res[p].next.logits;
  let num = 0, den = 0;
  for (let t = 0; t < ref.length; t++) { num += (got.get(t) - ref[t]) ** 2; den += ref[t] ** 2; }
  const rel = Math.sqrt(num / den);
  worst = Math.max(worst, rel);
  console.log(`position ${p}: relative logit error ${rel.toExponential(3)}`);
});
await context.dispose();
await model.dispose();
console.log(worst < 0.02 ? "PASS check_export" : "FAIL check_export");
process.exit(worst < 0.02 ? 0 : 1);
