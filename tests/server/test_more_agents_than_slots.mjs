// test_more_agents_than_slots.mjs — five OpenCode-shaped agent sessions at
// once against a server computing four sequences at a time (--parallel 4):
//  * every answer equals a cache-off server's (no session ever gets another
//    session's KV: a wrong conversation restored would change it);
//  * no session's cache is thrashed away by the others' title requests: the
//    total of recomputed prompt tokens (prompt - cached) is <= 1.2x what the
//    same server computes for the same requests one at a time with room for
//    everything (the ideal).
// The requests are OpenCode's (../shared/traces): its system prompt and ten
// tool schemas, its title request with its own system prompt, then turns
// that resend the history with the answer and a tool result.
import fs from "node:fs";
import path from "node:path";
import { check, done, assert, assertEq, makeModel, startServer, raw, SHARED } from "./server_lib.mjs";

const model = makeModel("agents.gguf");
const trace = JSON.parse(fs.readFileSync(path.join(SHARED, "traces/opencode-turn1.json"), "utf8"));
const title = JSON.parse(fs.readFileSync(path.join(SHARED, "traces/opencode-title-request.json"), "utf8"));
const SESSIONS = 5, TURNS = 3;

async function chat(url, body) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const r = await raw(url, "POST", "/v1/chat/completions", JSON.stringify({ ...body, stream: false, max_tokens: 12, temperature: 0 }));
    if (r.status === 503) { await new Promise((res) => setTimeout(res, 50)); continue; }
    if (r.status !== 200) throw new Error(`status ${r.status}: ${r.text.slice(0, 300)}`);
    return r.json;
  }
  throw new Error("503 too many times");
}

// One session: the title request at once with turn 1, then the turns. The
// history is extended with each answer exactly as received, then a tool
// result. `answers` collects [title, turn 1..TURNS] message objects.
async function session(url, s) {
  const user = `Session ${s}: what does src/module_${s}.c do, and where is it used?`;
  let messages = [trace.messages[0], { role: "user", content: user }];
  const titleBody = { messages: [...title.messages.slice(0, 1), { role: "user", content: user }] };
  const out = { answers: [], prompt: 0, cached: 0 };
  const titleReq = chat(url, titleBody);
  for (let t = 0; t < TURNS; t++) {
    const r = await chat(url, { messages, tools: trace.tools, tool_choice: "auto" });
    out.answers.push(r.choices[0].message);
    out.prompt += r.usage.prompt_tokens;
    out.cached += r.usage.prompt_tokens_details.cached_tokens;
    messages = [...messages, r.choices[0].message,
      { role: "user", content: `Tool output for session ${s}, turn ${t}:\n` + `line ${s}.${t}: int f_${s}_${t}(void);\n`.repeat(30) }];
  }
  const tr = await titleReq;
  out.answers.unshift(tr.choices[0].message);
  out.prompt += tr.usage.prompt_tokens;
  out.cached += tr.usage.prompt_tokens_details.cached_tokens;
  return out;
}

const base = ["--ctx-size", "16384", "--kv-memory", "64M"];
// Reference answers: no cache.
const ref = await startServer(model, [...base, "--prompt-cache-size", "0", "--no-prewarm", "--parallel", "4"]);
const refOut = [];
try { for (let s = 0; s < SESSIONS; s++) refOut.push(await session(ref.url, s)); } finally { await ref.stop(); }
// The ideal: the same requests one at a time, the cache large enough for all.
const one = await startServer(model, [...base, "--parallel", "1", "--prompt-cache-size", "1000"]);
const idealOut = [];
try { for (let s = 0; s < SESSIONS; s++) idealOut.push(await session(one.url, s)); } finally { await one.stop(); }
// Five at once against four slots, default cache settings.
const srv = await startServer(model, [...base, "--parallel", "4"]);
let got;
try { got = await Promise.all(Array.from({ length: SESSIONS }, (_, s) => session(srv.url, s))); } finally { await srv.stop(); }

await check("five_sessions_answers_equal_cache_off", async () => {
  for (let s = 0; s < SESSIONS; s++) {
    assertEq(got[s].answers, refOut[s].answers, `session ${s}`);
    assertEq(idealOut[s].answers, refOut[s].answers, `session ${s} (one at a time)`);
  }
});
await check("five_sessions_recompute_within_1.2x_ideal", async () => {
  const recomputed = (outs) => outs.reduce((a, o) => a + o.prompt - o.cached, 0);
  const r = recomputed(got), ideal = recomputed(idealOut), none = recomputed(refOut);
  console.log(`# recomputed prompt tokens: ${r} (5 sessions, --parallel 4) vs ideal ${ideal} (${(r / ideal).toFixed(3)}x), ` +
    `cache off ${none}`);
  assert(r <= 1.2 * ideal, `${r} > 1.2 x ${ideal}`);
  assert(ideal < 0.5 * none, "the ideal run used the cache");
});
done();
