// test_opencode.mjs — a real coding agent against larder: OpenCode 1.18.33
// (the Linux binary that npm `opencode-ai` runs, node_modules/opencode-linux-x64)
// configured with larder as an OpenAI-compatible provider, run twice in a
// throwaway git repository holding one main.c: "opencode run" and then
// "opencode run --continue" (the second turn of the same session). The model
// has random weights, so it answers gibberish and calls no tool; a plain text
// answer ends each turn. What is tested is the server, as OpenCode sees it:
//   - every request OpenCode sends is answered 200 and both runs exit 0;
//   - the second turn's main request takes >= 95% of its prompt from the
//     cache (usage.prompt_tokens_details.cached_tokens of the streamed reply);
//   - OpenCode's title request (sent concurrently on the first turn, with a
//     different 2k-character system prompt and no tools) does not evict the
//     main conversation.
//
// OpenCode talks to larder through a small recording proxy in this process.
// It records each request's kind (main: carries tools; side: the title
// request), HTTP status and streamed usage, and it holds side requests until
// the first main request has been answered: the title request then lands
// after the main conversation is cached, the order in which a cache that keeps
// one conversation loses it (run with --prompt-cache-size 1, this test fails).
//
// OpenCode runs offline: HOME and the XDG folders inside TEST_TMP, --pure (no
// external plugins), auto-update, models.dev fetch, sharing and LSP downloads
// off (OPENCODE_DISABLE_*). OpenCode also runs `npm install @opencode-ai/plugin`
// in its config folder unless that folder has node_modules/ and a
// package-lock.json listing the package: both are written below. npm and bun
// registries point at a sink in this process that fails the test if anything
// asks it for a package. The @ai-sdk/openai-compatible provider is bundled in
// the binary (nothing is installed for it).
//
// OPENCODE_MODEL=minimax-m2 (tests/server/test_opencode_minimax.mjs) runs the
// same two turns against a MiniMax-M2-shaped mixture of experts (2 layers of
// 8 experts, sigmoid routing) serving MiniMax-M2's own chat template, as the
// project's origin ran it.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { TMP, check, done, assert, makeModel, startServer, freePort } from "./server_lib.mjs";

const ROOT = process.env.ROOT || process.cwd();
const OPENCODE = path.join(ROOT, "node_modules/opencode-linux-x64/bin/opencode");
const OUTPUT_TOKENS = 48;      /* the model's output limit in opencode.json: keeps each reply short */
const RUN_TIMEOUT_MS = 120000; /* one `opencode run`; OpenCode retries failed requests without end */
const MIN_CACHED_RATIO = 0.95; /* the target for the second turn */

// OpenCode's prompts are ~7.3k tokens with Qwen2.5's vocabulary; the model is
// tiny (dim 64, 2 layers) so that such a prefill takes about a second here.
const MODEL_KIND = process.env.OPENCODE_MODEL || "qwen2";
const SHARED = process.env.SHARED, LARDER = process.env.LARDER;
function minimaxModel() {
  const out = path.join(TMP, "opencode-minimax-m2.gguf");
  if (!fs.existsSync(out))
    execFileSync(LARDER, ["make-model", "--arch", "minimax-m2", "--vocab", path.join(SHARED, "vocab/ggml-vocab-llama-bpe.gguf"),
      "--chat-template", path.join(SHARED, "templates/MiniMax-M2.jinja"), "--dim", "64", "--ff", "64", "--heads", "4",
      "--kv-heads", "2", "--head-dim", "32", "--rot", "16", "--experts", "8", "--experts-used", "2", "--layers", "2",
      "--ctx", "32768", "--type", "f32", "--seed", "7", "--quiet", "--out", out], { stdio: "inherit" });
  return out;
}
const model = MODEL_KIND === "minimax-m2" ? minimaxModel() : makeModel("opencode.gguf", ["--ctx", "32768"]);
const srv = await startServer(model, ["--model-name", "tiny", "--kv-memory", "256M", ...(process.env.OPENCODE_SERVE_ARGS || "").split(" ").filter(Boolean)]);

// --- the recording proxy between OpenCode and larder ---
const records = []; /* {kind, path, system, status, done, usage, t0_ms, t1_ms} */
let releaseSide;
const firstMainAnswered = new Promise((r) => { releaseSide = r; });
const upstream = new URL(srv.url);
const t00 = Date.now();
const proxy = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  let json = null;
  try { json = JSON.parse(body.toString()); } catch {}
  const rec = {
    kind: json && Array.isArray(json.tools) && json.tools.length ? "main" : "side", path: req.url,
    system: String(json?.messages?.[0]?.content ?? "").slice(0, 40), status: 0, done: false, usage: null,
    t0_ms: Date.now() - t00, t1_ms: 0,
  };
  records.push(rec);
  res.on("error", () => {});
  if (rec.kind === "side") await firstMainAnswered;
  const headers = { ...req.headers, host: upstream.host, "content-length": String(body.length) };
  const up = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers }, (ur) => {
    rec.status = ur.statusCode;
    if (!res.destroyed) res.writeHead(ur.statusCode, ur.headers);
    let tail = "";
    ur.on("data", (d) => {
      tail = (tail + d.toString()).slice(-4096);
      if (!res.destroyed) res.write(d); /* OpenCode may have gone: larder's answer is read to the end anyway */
    });
    ur.on("end", () => {
      for (const m of tail.matchAll(/^data: (\{.*"usage":\{.*)$/gm)) {
        try { const u = JSON.parse(m[1]).usage; if (u) rec.usage = u; } catch {}
      }
      rec.done = true;
      rec.t1_ms = Date.now() - t00;
      if (rec.kind === "main") releaseSide();
      if (!res.destroyed) res.end();
    });
  });
  up.on("error", (e) => {
    rec.status = -1; rec.done = true;
    if (rec.kind === "main") releaseSide();
    res.destroy(e);
  });
  up.end(body);
});
const proxyPort = await freePort();
await new Promise((r) => proxy.listen(proxyPort, "127.0.0.1", r));

// --- a registry sink: any package request is a failure (nothing may be downloaded) ---
const downloads = [];
const sink = http.createServer((req, res) => { downloads.push(`${req.method} ${req.url}`); res.statusCode = 404; res.end(); });
const sinkPort = await freePort();
await new Promise((r) => sink.listen(sinkPort, "127.0.0.1", r));
const registry = `http://127.0.0.1:${sinkPort}/`;

// --- OpenCode's private home and project ---
const home = path.join(TMP, `opencode-home-${MODEL_KIND}`), proj = path.join(TMP, `opencode-project-${MODEL_KIND}`);
const configDir = path.join(home, ".config/opencode");
fs.mkdirSync(path.join(configDir, "node_modules"), { recursive: true });
fs.writeFileSync(path.join(configDir, "package-lock.json"),
  JSON.stringify({ packages: { "": { dependencies: { "@opencode-ai/plugin": "1.18.33" } } } }));
fs.mkdirSync(proj, { recursive: true });
fs.writeFileSync(path.join(proj, "main.c"), '#include <stdio.h>\n\nint main(void) {\n    puts("hello");\n    return 0;\n}\n');
spawnSync("git", ["init", "-q"], { cwd: proj });
fs.writeFileSync(path.join(proj, "opencode.json"), JSON.stringify({
  $schema: "https://opencode.ai/config.json",
  provider: {
    larder: {
      npm: "@ai-sdk/openai-compatible", name: "larder",
      options: { baseURL: `http://127.0.0.1:${proxyPort}/v1` },
      models: { tiny: { name: "tiny", limit: { context: 32000, output: OUTPUT_TOKENS } } },
    },
  },
  model: "larder/tiny", small_model: "larder/tiny", autoupdate: false, share: "disabled",
}, null, 2));
const env = {
  PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: `${home}/.config`, XDG_DATA_HOME: `${home}/.local/share`,
  XDG_CACHE_HOME: `${home}/.cache`, XDG_STATE_HOME: `${home}/.local/state`,
  OPENCODE_DISABLE_AUTOUPDATE: "1", OPENCODE_DISABLE_MODELS_FETCH: "1", OPENCODE_DISABLE_SHARE: "1",
  OPENCODE_DISABLE_LSP_DOWNLOAD: "1", OPENCODE_DISABLE_DEFAULT_PLUGINS: "1",
  npm_config_registry: registry, NPM_CONFIG_REGISTRY: registry, BUN_CONFIG_REGISTRY: registry,
};

// Runs OpenCode without blocking this process's event loop (the proxy runs in
// it); resolves to the wall time when it exits 0.
function opencode(args) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(OPENCODE, ["run", "--pure", ...args], { cwd: proj, env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stdout.resume();
    p.stderr.on("data", (d) => { err = (err + d).slice(-3000); });
    const timer = setTimeout(() => p.kill("SIGKILL"), RUN_TIMEOUT_MS);
    p.on("exit", (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve(Date.now() - t0);
      else reject(new Error(`opencode ${args.join(" ")}: status ${code} ${sig || ""}\n${err}`));
    });
  });
}
// Waits until every recorded request has been answered to the end.
async function settle() {
  for (let i = 0; i < 600 && records.some((r) => !r.done); i++) await new Promise((r) => setTimeout(r, 50));
  assert(records.every((r) => r.done), `requests still open: ${JSON.stringify(records.filter((r) => !r.done))}`);
}
const cacheStats = async () => (await fetch(`${srv.url}/v1/cache`)).json();
const show = (rs) => JSON.stringify(rs.map((r) => ({ kind: r.kind, status: r.status, prompt: r.usage?.prompt_tokens,
  cached: r.usage?.prompt_tokens_details?.cached_tokens, t0_ms: r.t0_ms, t1_ms: r.t1_ms })));
const checkAnswered = (rs, what) => {
  for (const r of rs) {
    assert(r.path === "/v1/chat/completions", `${what}: OpenCode asked for ${r.path}`);
    assert(r.status === 200, `${what}: a ${r.kind} request was answered ${r.status}: ${show(rs)}`);
    assert(r.usage && r.usage.prompt_tokens > 0, `${what}: a ${r.kind} reply carried no usage: ${show(rs)}`);
  }
};

let turn1 = [];
await check("opencode turn 1 (new session): main and title requests answered 200, run exits 0", async () => {
  assert(fs.existsSync(OPENCODE), `no OpenCode binary at ${OPENCODE} (make deps)`);
  const ms = await opencode(["What does main.c do?"]);
  await settle();
  turn1 = records.slice();
  console.log(`# turn 1: ${ms} ms; requests ${show(turn1)}`);
  const main = turn1.filter((r) => r.kind === "main"), side = turn1.filter((r) => r.kind === "side");
  assert(main.length >= 1, `no main request: ${show(turn1)}`);
  assert(side.length >= 1, `no title request: ${show(turn1)}`);
  assert(side[0].system !== main[0].system, `title and main requests share a system prompt: ${side[0].system}`);
  checkAnswered(turn1, "turn 1");
  // The proxy held the title request back: it was answered after the main one.
  assert(side[0].t1_ms >= main[0].t1_ms, `title request answered before the main one: ${show(turn1)}`);
  assert(!/Z E /.test(srv.log()), `server logged an error:\n${srv.log()}`);
});

await check("title request does not evict the main conversation (both stay cached, no eviction)", async () => {
  const st = await cacheStats();
  assert(st.entries >= 2, `after turn 1 the cache holds ${st.entries} conversation(s), expected the main one and the title`);
  assert(st.evictions === 0, `the cache evicted ${st.evictions} entries during turn 1`);
});

await check(`opencode turn 2 (--continue): answered 200, >= ${100 * MIN_CACHED_RATIO}% of its prompt cached`, async () => {
  const from = records.length;
  const ms = await opencode(["--continue", "And what does it print?"]);
  await settle();
  const turn2 = records.slice(from);
  console.log(`# turn 2: ${ms} ms; requests ${show(turn2)}`);
  checkAnswered(turn2, "turn 2");
  const main = turn2.filter((r) => r.kind === "main");
  assert(main.length >= 1, `no main request on turn 2: ${show(turn2)}`);
  const prev = turn1.filter((r) => r.kind === "main")[0].usage.prompt_tokens;
  const u = main[0].usage, cached = u.prompt_tokens_details?.cached_tokens ?? 0;
  const ratio = cached / u.prompt_tokens;
  console.log(`# turn 2 main request: ${cached} of ${u.prompt_tokens} prompt tokens cached (${(100 * ratio).toFixed(2)}%); turn 1's was ${prev}`);
  assert(u.prompt_tokens > prev, `turn 2's prompt (${u.prompt_tokens}) does not extend turn 1's (${prev})`);
  assert(ratio >= MIN_CACHED_RATIO, `turn 2 main request: ${cached} of ${u.prompt_tokens} prompt tokens cached (${(100 * ratio).toFixed(1)}%)`);
  const st = await cacheStats();
  assert(st.evictions === 0, `the cache evicted ${st.evictions} entries`);
  assert(!/Z E /.test(srv.log()), `server logged an error:\n${srv.log()}`);
});

await check("OpenCode downloaded nothing (registry sink untouched)", async () => {
  assert(downloads.length === 0, `OpenCode asked the registry for: ${downloads.join(", ")}`);
});

// larder's own request log lines (prompt, cached, generated tokens, TTFT).
for (const l of srv.log().split("\n")) if (/chatcmpl-\S+ prompt=/.test(l)) console.log(`# larder: ${l}`);
proxy.close();
sink.close();
await srv.stop();
done();
