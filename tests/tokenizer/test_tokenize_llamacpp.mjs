// Tokenization agrees with llama.cpp (node-llama-cpp, vocab-only load):
// `larder tokenize --model V TEXT` == model.tokenize(TEXT, false), and
// `larder detokenize` of those ids == model.detokenize(ids), for every shared
// vocabulary and varied text (code, JSON, CJK, emoji, combining marks,
// whitespace runs, CRLF, numbers, special-token look-alikes).
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { getLlama } from "node-llama-cpp";

const LARDER = process.env.LARDER;
const VOCAB = path.join(process.env.SHARED || "../shared", "vocab");

const texts = [
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
  '{"name": "larder", "version": [1, 2, 3], "ok": true, "nested": {"a": null, "b": -0.5e10}}',
  "日本語のテキストと中文文本，还有한국어 텍스트。",
  "Emoji: 🦙🚀 👨‍👩‍👧‍👦 🏳️‍🌈 ✅❌ 😶‍🌫️",
  "Combining: e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937 Z\u0351\u0352\u0353alg\u0317o",
  "   leading spaces, then\t\ttabs\n\n\n  and   runs      of      spaces   ",
  "line one\r\nline two\r\n\r\nline four\rlone CR",
  "Numbers: 0 7 42 123 1234 12345 3.14159 -2.5e-10 1,000,000 0xDEADBEEF",
  "I've been 'told' he's there; we'LL see. DON'T shout! Really?? Yes... ok , fine .",
  "<|im_start|>user\nHello<|im_end|> <s> </s> <|eot_id|> [INST] hi [/INST]",
  "Ünïcödé façade naïve coöperate Ελληνικά кириллица עברית العربية हिन्दी ไทย",
  "",
  " ",
  "\n",
  "a".repeat(300) + " " + "ab".repeat(100) + " 😀".repeat(20),
];

let failed = 0;
const pass = (name) => console.log(`PASS ${name}`);
const fail = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`); };

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const vocabs = readdirSync(VOCAB).filter((f) => f.endsWith(".gguf")).sort();
if (vocabs.length === 0) fail("vocabularies", `none in ${VOCAB}`);
for (const v of vocabs) {
  const file = path.join(VOCAB, v);
  const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
  let bad = [];
  texts.forEach((text, i) => {
    const want = Array.from(model.tokenize(text, false));
    let got;
    try {
      got = JSON.parse(execFileSync(LARDER, ["tokenize", "--model", file, text], { encoding: "utf8" }));
    } catch (e) {
      bad.push(`text ${i}: larder failed: ${e.message.split("\n")[0]}`);
      return;
    }
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      bad.push(`text ${i} ${JSON.stringify(text.slice(0, 30))}: want ${JSON.stringify(want.slice(0, 24))} got ${JSON.stringify(got.slice(0, 24))}`);
      return;
    }
    if (want.length === 0) return;
    const wantText = model.detokenize(want);
    const gotText = execFileSync(LARDER, ["detokenize", "--model", file, want.join(",")], { encoding: "utf8" }).replace(/\n$/, "");
    if (gotText !== wantText) bad.push(`text ${i}: detokenize want ${JSON.stringify(wantText.slice(0, 60))} got ${JSON.stringify(gotText.slice(0, 60))}`);
  });
  if (bad.length) fail(`tokenize ${v}`, bad.join("; "));
  else pass(`tokenize ${v} (${texts.length} texts, tokens and text)`);
  await model.dispose();
}
process.exit(failed ? 1 : 0);
