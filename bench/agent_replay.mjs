// agent_replay.mjs — a deterministic multi-turn agent workload replayed
// against a running larder server (shaped like SGLang's and vLLM's
// multi-turn benchmarks): sessions share one system prompt and tool list
// (OpenCode's, from ../shared/traces), each turn appends a user message or a
// tool-output-sized block, a few sessions run concurrently, and every turn
// resends the whole conversation, the assistant's previous answers included.
//
// Reports per turn: TTFT (first streamed chunk), prompt tokens, cached tokens
// (usage.prompt_tokens_details.cached_tokens) against the ideal (everything
// but the new tail), and at the end throughput and the server's peak RSS
// (from /metrics).
//
// usage: node bench/agent_replay.mjs --url http://127.0.0.1:8080 [--sessions 4]
//        [--turns 6] [--concurrency 2] [--append-chars 2000] [--max-tokens 16]
//        [--system-chars 0 (all)] [--label NAME] [--json]
import fs from "node:fs";
import path from "node:path";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith("--") ? all[i + 1] : "1"]);
  return acc;
}, []));
const url = args.url || "http://127.0.0.1:8080";
const sessions = +(args.sessions || 4), turns = +(args.turns || 6), concurrency = +(args.concurrency || 2);
const appendChars = +(args["append-chars"] || 2000), maxTokens = +(args["max-tokens"] || 16);
const shared = process.env.SHARED || path.join(path.dirname(new URL(import.meta.url).pathname), "../../shared");
const trace = JSON.parse(fs.readFileSync(path.join(shared, "traces/opencode-turn1.json"), "utf8"));
let system = trace.messages[0].content;
if (+(args["system-chars"] || 0) > 0) system = system.slice(0, +args["system-chars"]);
const tools = args["no-tools"] ? undefined : trace.tools;

// Deterministic filler text shaped like tool output (file listings, code).
function filler(seed, n) {
  let x = seed * 2654435761 % 4294967296, out = "";
  const words = ["int", "main", "return", "static", "void", "buffer", "size_t", "cache", "page", "node", "0x1f",
                 "if", "else", "for", "while", "struct", "/* comment */", "{", "}", ";", "src/kv/pool.c", "42"];
  while (out.length < n) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out += words[x % words.length] + ((x >> 8) % 7 === 0 ? "\n" : " ");
  }
  return out.slice(0, n);
}

async function turn(history) {
  const t0 = performance.now();
  const resp = await fetch(url + "/v1/chat/completions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ model: "any", messages: history, tools, max_tokens: maxTokens, temperature: 0,
                           stream: true, stream_options: { include_usage: true } }),
  });
  if (!resp.ok) return { status: resp.status, error: await resp.text() };
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "", ttft = null, text = "", usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) usage = j.usage;
      for (const c of j.choices || []) {
        if (ttft === null && (c.delta.content !== undefined || c.delta.tool_calls)) ttft = performance.now() - t0;
        if (c.delta.content) text += c.delta.content;
      }
    }
  }
  return { status: 200, ttft_ms: ttft, total_ms: performance.now() - t0, text, usage };
}

async function runSession(s, results) {
  const history = [{ role: "system", content: system }, { role: "user", content: `Session ${s}: ` + filler(s, 400) }];
  let prevPrompt = 0;
  for (let t = 0; t < turns; t++) {
    const r = await turn(history);
    const row = { session: s, turn: t, status: r.status };
    if (r.status === 200) {
      row.ttft_ms = +r.ttft_ms.toFixed(1);
      row.prompt_tokens = r.usage.prompt_tokens;
      row.cached_tokens = r.usage.prompt_tokens_details?.cached_tokens ?? 0;
      // Ideal: everything the previous turn sent and received is reusable.
      row.ideal_cached = t === 0 ? null : prevPrompt;
      prevPrompt = r.usage.prompt_tokens + r.usage.completion_tokens;
      row.completion_tokens = r.usage.completion_tokens;
      history.push({ role: "assistant", content: r.text });
    } else {
      row.error = r.error.slice(0, 200);
      history.push({ role: "assistant", content: "" });
    }
    history.push(t % 2 === 0 ? { role: "user", content: "Here is the tool output:\n" + filler(s * 100 + t, appendChars) }
                             : { role: "user", content: "Continue. " + filler(s * 1000 + t, 200) });
    results.push(row);
  }
}

const t0 = performance.now();
const results = [];
const cacheStats = async () => (await fetch(url + "/v1/cache")).json();
const stats0 = await cacheStats();
for (let s = 0; s < sessions; s += concurrency) {
  const batch = [];
  for (let k = s; k < Math.min(sessions, s + concurrency); k++) batch.push(runSession(k, results));
  await Promise.all(batch);
}
const wall_s = (performance.now() - t0) / 1000;
const metrics = await (await fetch(url + "/metrics")).text();
const peak = +(metrics.match(/^larder_resident_memory_peak_bytes (\d+)/m) || [0, 0])[1];
const stats1 = await cacheStats();
const busy_s = stats1.engine_busy_s - stats0.engine_busy_s, book_s = stats1.cache_bookkeeping_s - stats0.cache_bookkeeping_s;
const ok = results.filter((r) => r.status === 200);
const cold = ok.filter((r) => r.turn === 0), warm = ok.filter((r) => r.turn > 0);
const mean = (a) => a.length ? a.reduce((x, y) => x + y, 0) / a.length : NaN;
const idealWarm = warm.reduce((a, r) => a + (r.ideal_cached || 0), 0);
const cachedWarm = warm.reduce((a, r) => a + r.cached_tokens, 0);
const summary = {
  label: args.label || "", sessions, turns, concurrency, requests: results.length, ok: ok.length,
  errors: results.length - ok.length, wall_s: +wall_s.toFixed(2),
  ttft_cold_ms: +mean(cold.map((r) => r.ttft_ms)).toFixed(1), ttft_warm_ms: +mean(warm.map((r) => r.ttft_ms)).toFixed(1),
  cached_ratio_vs_ideal: idealWarm ? +(cachedWarm / idealWarm).toFixed(3) : null,
  prompt_tokens_total: ok.reduce((a, r) => a + r.prompt_tokens, 0),
  generated_tokens_total: ok.reduce((a, r) => a + r.completion_tokens, 0),
  peak_rss_mib: +(peak / 1048576).toFixed(1),
  engine_busy_s: +busy_s.toFixed(3), cache_bookkeeping_s: +book_s.toFixed(4),
  cache_bookkeeping_fraction: busy_s > 0 ? +(book_s / busy_s).toFixed(5) : null,
};
summary.prompt_tok_per_s = +(summary.prompt_tokens_total / wall_s).toFixed(1);
if (args.json) console.log(JSON.stringify({ summary, turns: results }));
else {
  for (const r of results) console.log(JSON.stringify(r));
  console.log(JSON.stringify(summary));
}
