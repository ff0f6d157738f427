// test_prewarm.mjs — next-turn pre-warming (src/server/prewarm.c) through the
// real server, on the MiniMax-M2 and Qwen3 templates (both drop an earlier
// assistant turn's reasoning once a new user message follows it, so without
// pre-warming the next turn's prompt diverges at the first assistant turn):
//  * a conversation with reasoning, a tool call and a long tool result; after
//    the server's answer and an idle wait, the next user turn's cached_tokens
//    is >= 95% of its prompt; with --no-prewarm it is far lower (the
//    divergence is real);
//  * the answers are identical with and without pre-warming (temperature 0);
//  * /v1/cache and /metrics count the pre-warmed tokens and the hits on them.
// Prints the idle time each needed ("idle_ms").
import { execFileSync } from "node:child_process";
import path from "node:path";
import fs from "node:fs";
import { check, done, assert, assertEq, startServer, raw, LARDER, SHARED, TMP } from "./server_lib.mjs";

function makeModelWith(template, name) {
  const out = path.join(TMP, name);
  if (fs.existsSync(out)) return out;
  execFileSync(LARDER, ["make-model", "--arch", "qwen2",
    "--vocab", path.join(SHARED, "vocab/ggml-vocab-qwen2.gguf"),
    "--chat-template", path.join(SHARED, "templates", template),
    "--dim", "64", "--ff", "128", "--heads", "4", "--kv-heads", "2", "--layers", "2",
    "--ctx", "4096", "--type", "f32", "--seed", "11", "--out", out], { stdio: "inherit" });
  return out;
}

const tools = [{ type: "function", function: { name: "read", description: "Read a file from the project.",
  parameters: { type: "object", properties: { filePath: { type: "string", description: "absolute path" } }, required: ["filePath"] } } }];
const fileText = Array.from({ length: 120 }, (_, i) => `${i + 1}: static int helper_${i}(int x) { return x * ${i} + 1; }`).join("\n");
const history = [
  { role: "system", content: "You are a coding agent. Use the tools to read files before answering." },
  { role: "user", content: "What does main.c do?" },
  { role: "assistant", content: "", reasoning_content: "The user asks about main.c. I should read it first.",
    tool_calls: [{ id: "call_1", type: "function", function: { name: "read", arguments: "{\"filePath\":\"/home/dev/project/main.c\"}" } }] },
  { role: "tool", tool_call_id: "call_1", content: `<path>/home/dev/project/main.c</path>\n<content>\n${fileText}\n</content>` },
];

async function chat(url, messages) {
  const r = await raw(url, "POST", "/v1/chat/completions", JSON.stringify({ messages, tools, max_tokens: 12, temperature: 0 }));
  if (r.status !== 200) throw new Error(`status ${r.status}: ${r.text.slice(0, 300)}`);
  return r.json;
}

async function cacheStats(url) {
  return (await raw(url, "GET", "/v1/cache")).json;
}

// One conversation: the tool-result turn, then (after waiting for the
// pre-warming job, when on) the next user turn. Returns what was seen.
async function conversation(url, prewarm) {
  const before = await cacheStats(url);
  const second = await chat(url, history);
  const msg = second.choices[0].message; // sent back exactly as received
  const next = [...history, msg, { role: "user", content: "Thanks. Now explain helper_7." }];
  const t0 = Date.now();
  let idleMs = 0;
  if (prewarm) {
    for (;;) {
      const st = await cacheStats(url);
      if (st.prewarm.jobs > before.prewarm.jobs) break;
      if (Date.now() - t0 > 30000) throw new Error(`no pre-warming job finished: ${JSON.stringify(st)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    idleMs = Date.now() - t0;
  } else {
    await new Promise((r) => setTimeout(r, 300)); // the same idle time, nothing happens
  }
  const third = await chat(url, next);
  return { second, third, idleMs, cached: third.usage.prompt_tokens_details.cached_tokens, prompt: third.usage.prompt_tokens };
}

for (const [template, name] of [["MiniMax-M2.jinja", "minimax"], ["Qwen-Qwen3-0.6B.jinja", "qwen3"]]) {
  const model = makeModelWith(template, `prewarm-${name}.gguf`);
  const args = ["--ctx-size", "4096", "--kv-memory", "8M", "--parallel", "2"];
  const off = await startServer(model, [...args, "--no-prewarm"]);
  let offRun;
  try { offRun = await conversation(off.url, false); } finally { await off.stop(); }
  const on = await startServer(model, args);
  let onRun;
  try {
    onRun = await conversation(on.url, true);
    await check(`${name}_next_turn_hits_after_prewarm`, async () => {
      console.log(`# ${name}: next turn ${onRun.cached}/${onRun.prompt} cached with pre-warming (idle_ms ${onRun.idleMs}), ` +
        `${offRun.cached}/${offRun.prompt} without`);
      assert(onRun.cached >= 0.95 * onRun.prompt, `cached ${onRun.cached} of ${onRun.prompt}`);
      assert(offRun.cached < 0.5 * offRun.prompt, `without pre-warming ${offRun.cached} of ${offRun.prompt}: no divergence to fix?`);
    });
    await check(`${name}_answers_identical_with_and_without_prewarm`, async () => {
      assertEq(onRun.second.choices[0].message, offRun.second.choices[0].message, "tool-result turn");
      assertEq(onRun.third.choices[0].message, offRun.third.choices[0].message, "next user turn");
      assertEq(onRun.prompt, offRun.prompt, "prompt tokens");
    });
    await check(`${name}_prewarm_counted`, async () => {
      const st = await cacheStats(on.url);
      assert(st.prewarm.tokens > 0, JSON.stringify(st.prewarm));
      assert(st.prewarm.hit_tokens > 0 && st.prewarm.hit_tokens <= onRun.cached, JSON.stringify(st.prewarm));
      const m = (await raw(on.url, "GET", "/metrics")).text;
      const val = (k) => Number((m.split("\n").find((l) => l.startsWith(k + " ")) || " NaN").split(" ")[1]);
      // the last turn's own pre-warming may finish between the reads: the
      // metric lies between the counts read before and after it
      const after = await cacheStats(on.url);
      const tokens = val("larder_prewarm_tokens_total");
      assert(tokens >= st.prewarm.tokens && tokens <= after.prewarm.tokens,
        `metrics tokens ${tokens}, /v1/cache ${st.prewarm.tokens} before and ${after.prewarm.tokens} after`);
      assert(val("larder_prewarm_hit_tokens_total") >= st.prewarm.hit_tokens, "metrics hits");
      assert(val("larder_prewarm_submitted_total") >= 1, "metrics submitted"); // the last turn's may still be rendering
    });
  } finally {
    await on.stop();
  }
}
done();
