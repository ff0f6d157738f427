// test_opencode.mjs — a real coding agent against larder: OpenCode 1.18.33
// (the Linux binary from npm, node_modules/opencode-linux-x64) configured
// with larder as an OpenAI-compatible provider, run twice in a throwaway git
// repository holding one main.c: "opencode run" and then "opencode run
// --continue" (the second turn of the same session). The model has random
// weights, so it answers gibberish and calls no tool; what is tested is the
// server: every request OpenCode sends is answered (HTTP 200, both runs exit
// 0), the second turn's main request takes >= 95% of its prompt from the
// cache, and the title request OpenCode sends on the first turn (a different
// 2k-character system prompt) stays cached beside the main conversation
// instead of replacing it.
//
// OpenCode runs offline: HOME and the XDG folders inside TEST_TMP, --pure (no
// plugins to install), auto-update, models.dev fetch, sharing and LSP
// downloads off, and npm/bun registries pointed at a closed port so that any
// attempt to download would fail the run instead of silently succeeding.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { TMP, check, done, assert, makeModel, startServer } from "./server_lib.mjs";

const ROOT = process.env.ROOT || process.cwd();
const OPENCODE = path.join(ROOT, "node_modules/opencode-linux-x64/bin/opencode");
const OUTPUT_TOKENS = 48;

// OpenCode's prompts are ~7.3k tokens with Qwen2.5's vocabulary; the model is
// tiny so that prefill takes about a second here.
const model = makeModel("opencode.gguf", ["--ctx", "32768"]);
const srv = await startServer(model, ["--model-name", "tiny", "--kv-memory", "256M"]);

const home = path.join(TMP, "opencode-home"), proj = path.join(TMP, "opencode-project");
fs.mkdirSync(home, { recursive: true });
fs.mkdirSync(proj, { recursive: true });
fs.writeFileSync(path.join(proj, "main.c"), '#include <stdio.h>\n\nint main(void) {\n    puts("hello");\n    return 0;\n}\n');
spawnSync("git", ["init", "-q"], { cwd: proj });
fs.writeFileSync(path.join(proj, "opencode.json"), JSON.stringify({
  $schema: "https://opencode.ai/config.json",
  provider: {
    larder: {
      npm: "@ai-sdk/openai-compatible", name: "larder",
      options: { baseURL: `${srv.url}/v1` },
      models: { tiny: { name: "tiny", limit: { context: 32000, output: OUTPUT_TOKENS } } },
    },
  },
  model: "larder/tiny", small_model: "larder/tiny", autoupdate: false, share: "disabled",
}, null, 2));
const closed = "http://127.0.0.1:9/";
const env = {
  PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: `${home}/.config`, XDG_DATA_HOME: `${home}/.local/share`,
  XDG_CACHE_HOME: `${home}/.cache`, XDG_STATE_HOME: `${home}/.local/state`,
  OPENCODE_DISABLE_AUTOUPDATE: "1", OPENCODE_DISABLE_MODELS_FETCH: "1", OPENCODE_DISABLE_SHARE: "1",
  OPENCODE_DISABLE_LSP_DOWNLOAD: "1", OPENCODE_DISABLE_DEFAULT_PLUGINS: "1",
  npm_config_registry: closed, NPM_CONFIG_REGISTRY: closed, BUN_CONFIG_REGISTRY: closed,
};

// Runs OpenCode without blocking this process's event loop (which reads the
// server's log as it comes); resolves when it exits 0, within 3 minutes.
function opencode(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(OPENCODE, ["run", "--pure", ...args], { cwd: proj, env, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stdout.resume();
    p.stderr.on("data", (d) => { err = (err + d).slice(-3000); });
    const timer = setTimeout(() => p.kill("SIGKILL"), 180000);
    p.on("exit", (code, sig) => {
      clearTimeout(timer);
      if (code === 0) setTimeout(resolve, 100); /* the server's last log lines */
      else reject(new Error(`opencode ${args.join(" ")}: status ${code} ${sig || ""}\n${err}`));
    });
  });
}

// The server's request log lines since `from`: {id, prompt, cached, generated}.
function requests(from) {
  return srv.log().slice(from).split("\n").map((l) => /(chatcmpl-\S+) prompt=(\d+) cached=(\d+) generated=(\d+)/.exec(l))
    .filter(Boolean).map((m) => ({ id: m[1], prompt: +m[2], cached: +m[3], generated: +m[4] }));
}
const cacheStats = async () => (await fetch(`${srv.url}/v1/cache`)).json();
// The main conversation's request is the one with the ~7k-token prompt (the
// system prompt and ten tool schemas); the title request's is ~500 tokens.
const isMain = (r) => r.prompt > 5000;

let turn1 = [];
await check("opencode turn 1 (new session) succeeds", async () => {
  assert(fs.existsSync(OPENCODE), `no OpenCode binary at ${OPENCODE} (make deps)`);
  const from = srv.log().length;
  await opencode(["What does main.c do?"]);
  turn1 = requests(from);
  assert(turn1.some(isMain), `no main request logged: ${JSON.stringify(turn1)}`);
  assert(turn1.some((r) => !isMain(r)), `no title request logged: ${JSON.stringify(turn1)}`);
  assert(!/Z E /.test(srv.log().slice(from)), `server logged an error:\n${srv.log().slice(from)}`);
  const st = await cacheStats();
  assert(st.entries >= 2, `after turn 1 the cache holds ${st.entries} conversation(s), expected the main one and the title`);
});

await check("opencode turn 2 (--continue) succeeds with >= 95% of its prompt cached", async () => {
  const from = srv.log().length;
  const evictions0 = (await cacheStats()).evictions;
  await opencode(["--continue", "And what does it print?"]);
  const turn2 = requests(from);
  const main = turn2.filter(isMain);
  assert(main.length >= 1, `no main request on turn 2: ${JSON.stringify(turn2)}`);
  const first = main[0];
  const ratio = first.cached / first.prompt;
  console.log(`# turn 1: ${JSON.stringify(turn1)}; turn 2: ${JSON.stringify(turn2)}; cached ratio ${ratio.toFixed(4)}`);
  assert(ratio >= 0.95, `turn 2 main request: ${first.cached} of ${first.prompt} prompt tokens cached (${(100 * ratio).toFixed(1)}%)`);
  assert((await cacheStats()).evictions === evictions0, "the cache evicted entries during turn 2");
});

await srv.stop();
done();
