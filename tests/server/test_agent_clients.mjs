// test_agent_clients.mjs — the real agents that speak larder's other
// protocols, offline, two turns each:
//   - Claude Code (npm @anthropic-ai/claude-code 2.1.328, its linux-x64 native
//     binary) through Anthropic's Messages API (ANTHROPIC_BASE_URL):
//     `claude -p` then `claude -p --continue`;
//   - Codex CLI (npm @openai/codex 0.169.0, its linux-x64 native binary)
//     through the Responses API (a provider with wire_api = "responses"):
//     `codex exec` then `codex exec resume --last`.
// Each run must exit 0 with every request answered 200, and the second turn's
// main request must take >= 95% of its prompt from the cache (Claude Code
// changes its billing-header system block between requests, which larder
// drops from the prompt).
//
// The model is a scripted one (server_lib.mjs makeScriptedModel): the real
// forward pass over weights that make it answer "Hi" and end its turn, so the
// agents get a normal, finished answer (an answer cut at max_tokens is an
// error to both of them). Their prompts are ~11.7k (Claude Code) and ~6k
// (Codex) tokens.
//
// Offline: HOME (and CODEX_HOME) inside TEST_TMP; HTTP_PROXY/HTTPS_PROXY/
// ALL_PROXY point at a sink in this process and npm's registry too: any
// request that reaches it (a CONNECT or a plain request: telemetry, update
// checks, model catalogues) fails the test. Claude Code's non-essential
// traffic, telemetry, error reporting and auto-update are switched off by its
// documented environment variables; the clients reach larder through a
// recording proxy in this process (on loopback, NO_PROXY).
import { spawn } from "node:child_process";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { TMP, check, done, assert, makeScriptedModel, startServer, freePort } from "./server_lib.mjs";

const ROOT = process.env.ROOT || process.cwd();
const CLAUDE = path.join(ROOT, "node_modules/@anthropic-ai/claude-code-linux-x64/claude");
const CODEX = path.join(ROOT, "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex");
const RUN_TIMEOUT_MS = 120000;
const MIN_CACHED_RATIO = 0.95;
const HI = 13048, IM_END = 151645, NEWLINE = 198; /* Qwen2 vocabulary: "Hi", <|im_end|>, "\n" */

const model = makeScriptedModel("agents.gguf", [HI, IM_END], NEWLINE, ["--ctx", "32768"]);
const srv = await startServer(model, ["--model-name", "tiny", "--kv-memory", "256M"]);

// --- the recording proxy between the agents and larder ---
const records = []; /* {path, status, usage, done} */
const upstream = new URL(srv.url);
const proxy = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const rec = { path: req.url, status: 0, usage: null, done: false, tools: 0 };
  try { rec.tools = (JSON.parse(body.toString()).tools || []).length; } catch {}
  records.push(rec);
  res.on("error", () => {});
  const headers = { ...req.headers, host: upstream.host, "content-length": String(body.length) };
  const up = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers }, (ur) => {
    rec.status = ur.statusCode;
    if (!res.destroyed) res.writeHead(ur.statusCode, ur.headers);
    let text = "";
    ur.on("data", (d) => { text = (text + d.toString()).slice(-65536); if (!res.destroyed) res.write(d); });
    ur.on("end", () => {
      for (const m of text.matchAll(/^data: (\{.*\})$/gm)) {
        try { const j = JSON.parse(m[1]); const u = j.usage || j.response?.usage; if (u) rec.usage = u; } catch {}
      }
      if (!rec.usage) { try { rec.usage = JSON.parse(text).usage || null; } catch {} }
      rec.done = true;
      if (!res.destroyed) res.end();
    });
  });
  up.on("error", (e) => { rec.status = -1; rec.done = true; res.destroy(e); });
  up.end(body);
});
const proxyPort = await freePort();
await new Promise((r) => proxy.listen(proxyPort, "127.0.0.1", r));

// --- the sink: anything sent to the outside world lands here and fails the test ---
const outside = [];
const sink = http.createServer((req, res) => { outside.push(`${req.method} ${req.url}`); res.statusCode = 403; res.end(); });
sink.on("connect", (req, socket) => { outside.push(`CONNECT ${req.url}`); socket.end("HTTP/1.1 403 Forbidden\r\n\r\n"); });
const sinkPort = await freePort();
await new Promise((r) => sink.listen(sinkPort, "127.0.0.1", r));
const sinkUrl = `http://127.0.0.1:${sinkPort}`;
const offline = {
  PATH: process.env.PATH, HTTP_PROXY: sinkUrl, HTTPS_PROXY: sinkUrl, ALL_PROXY: sinkUrl, http_proxy: sinkUrl,
  https_proxy: sinkUrl, all_proxy: sinkUrl, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost",
  npm_config_registry: sinkUrl + "/", NPM_CONFIG_REGISTRY: sinkUrl + "/", TERM: "dumb",
};

function run(bin, args, cwd, env) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(bin, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    p.stdout.on("data", (d) => { out = (out + d).slice(-3000); });
    p.stderr.on("data", (d) => { err = (err + d).slice(-3000); });
    const timer = setTimeout(() => p.kill("SIGKILL"), RUN_TIMEOUT_MS);
    p.on("exit", (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve({ ms: Date.now() - t0, out });
      else reject(new Error(`${path.basename(bin)} ${args.join(" ")}: status ${code} ${sig || ""}\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}
async function settle() {
  for (let i = 0; i < 600 && records.some((r) => !r.done); i++) await new Promise((r) => setTimeout(r, 50));
  assert(records.every((r) => r.done), "requests still open");
}
const show = (rs) => JSON.stringify(rs.map((r) => ({ path: r.path, status: r.status, tools: r.tools, usage: r.usage })));
function checkTurn(rs, what, wantPath) {
  assert(rs.length >= 1, `${what}: no request reached larder`);
  for (const r of rs) {
    assert(r.path.split("?")[0] === wantPath, `${what}: asked for ${r.path}`);
    assert(r.status === 200, `${what}: a request was answered ${r.status}: ${show(rs)}`);
  }
  assert(outside.length === 0, `${what}: requests to the outside world: ${outside.join(", ")}`);
}
function project(name) {
  const dir = path.join(TMP, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "main.c"), '#include <stdio.h>\n\nint main(void) {\n    puts("hello");\n    return 0;\n}\n');
  return dir;
}

// --- Claude Code ---
const ccHome = path.join(TMP, "claude-home"), ccProj = project("claude-project");
fs.mkdirSync(ccHome, { recursive: true });
const ccEnv = { ...offline, HOME: ccHome, XDG_CONFIG_HOME: `${ccHome}/.config`, ANTHROPIC_BASE_URL: `http://127.0.0.1:${proxyPort}`,
  ANTHROPIC_API_KEY: "larder-test", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1", DISABLE_TELEMETRY: "1",
  DISABLE_AUTOUPDATER: "1", DISABLE_ERROR_REPORTING: "1", DISABLE_BUG_COMMAND: "1", CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY: "1" };
const ratioOf = (u) => u.cache_read_input_tokens !== undefined
  ? { cached: u.cache_read_input_tokens, total: u.input_tokens + u.cache_read_input_tokens + (u.cache_creation_input_tokens || 0) }
  : { cached: u.input_tokens_details?.cached_tokens ?? 0, total: u.input_tokens };

async function twoTurns(name, turn1, turn2, wantPath) {
  let first = [];
  await check(`${name} turn 1 exits 0, every request answered 200, nothing sent elsewhere`, async () => {
    const from = records.length;
    const r = await turn1();
    await settle();
    first = records.slice(from);
    console.log(`# ${name} turn 1: ${r.ms} ms, answer ${JSON.stringify(r.out.trim().slice(-40))}; requests ${show(first)}`);
    checkTurn(first, `${name} turn 1`, wantPath);
    assert(/Hi/.test(r.out), `the answer is not printed: ${r.out}`);
  });
  await check(`${name} turn 2 (continued) exits 0, >= ${100 * MIN_CACHED_RATIO}% of its prompt cached`, async () => {
    const from = records.length;
    const r = await turn2();
    await settle();
    const second = records.slice(from);
    console.log(`# ${name} turn 2: ${r.ms} ms; requests ${show(second)}`);
    checkTurn(second, `${name} turn 2`, wantPath);
    const main1 = first.filter((x) => x.tools > 0)[0], main2 = second.filter((x) => x.tools > 0)[0];
    assert(main1 && main2 && main1.usage && main2.usage, `no main request with usage: ${show(second)}`);
    const a = ratioOf(main1.usage), b = ratioOf(main2.usage);
    console.log(`# ${name} turn 2 main request: ${b.cached} of ${b.total} prompt tokens cached (${(100 * b.cached / b.total).toFixed(2)}%); turn 1's prompt was ${a.total}`);
    assert(b.total > a.total, `turn 2's prompt (${b.total}) does not extend turn 1's (${a.total})`);
    assert(b.cached / b.total >= MIN_CACHED_RATIO, `turn 2: only ${b.cached} of ${b.total} prompt tokens cached`);
  });
}

await check("the agents' native binaries are installed (make deps)", async () => {
  assert(fs.existsSync(CLAUDE), `no Claude Code binary at ${CLAUDE}`);
  assert(fs.existsSync(CODEX), `no Codex binary at ${CODEX}`);
});

await twoTurns("claude code",
  () => run(CLAUDE, ["-p", "What does main.c do?"], ccProj, ccEnv),
  () => run(CLAUDE, ["-p", "--continue", "And what does it print?"], ccProj, ccEnv),
  "/v1/messages");

// --- Codex CLI ---
const cxHome = path.join(TMP, "codex-home"), cxProj = project("codex-project");
fs.mkdirSync(path.join(cxHome, ".codex"), { recursive: true });
// Without the [analytics] … [features] settings Codex 0.169 calls home: the
// curated-plugins sync (github.com, api.github.com, chatgpt.com) and OTLP
// metrics (ab.chatgpt.com); the sink catches them.
fs.writeFileSync(path.join(cxHome, ".codex/config.toml"), [
  'model = "tiny"', 'model_provider = "larder"', "check_for_update_on_startup = false", "",
  "[analytics]", "enabled = false", "", "[feedback]", "enabled = false", "",
  "[otel]", 'exporter = "none"', 'metrics_exporter = "none"', "",
  "[features]", "plugins = false", "remote_models = false", "apps = false", "",
  "[model_providers.larder]", 'name = "larder"',
  `base_url = "http://127.0.0.1:${proxyPort}/v1"`, 'wire_api = "responses"', "",
].join("\n"));
const cxEnv = { ...offline, HOME: cxHome, CODEX_HOME: path.join(cxHome, ".codex") };
await twoTurns("codex",
  () => run(CODEX, ["exec", "--skip-git-repo-check", "What does main.c do?"], cxProj, cxEnv),
  () => run(CODEX, ["exec", "--skip-git-repo-check", "resume", "--last", "And what does it print?"], cxProj, cxEnv),
  "/v1/responses");

await check("server logged no error", async () => assert(!/Z E /.test(srv.log()), srv.log()));
proxy.close();
sink.close();
await srv.stop();
done();
