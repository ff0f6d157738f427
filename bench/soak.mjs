// soak.mjs — `make soak` (not in make test): mixed traffic against `larder
// serve` for SOAK_SECONDS (default 1800), with a twin server whose prompt
// cache is off as the oracle for the answers.
//
// Traffic (workers in parallel, each a loop):
//   agent     OpenCode's captured turn (../shared/traces: 9.5k-character
//             system prompt, 21k characters of tools) with a growing history,
//             streamed and whole, greedy; every answer is compared with the
//             cache-off twin's answer to the same request
//   title     the title side request (a different prefix)
//   slow      slow-loris heads and trickled bodies (they get 408 or are
//             evicted), idle keep-alive connections
//   gone      streams dropped after the first chunk, whole requests dropped
//             mid-prefill, half-closed requests
//   storm     bursts of 16 concurrent long prompts over the KV budget (503
//             with Retry-After is expected there, and retried)
//   hostile   bad JSON, duplicate keys, \u0000, wrong content types, bad
//             Host, huge declared bodies, unknown routes
//   cache     DELETE /v1/cache now and then
// Samples the server's RSS and thread count every 10 s. Passes when, after
// the warm-up (the first fifth), RSS grows by at most 32 MiB and threads by
// at most 16 over the warm-up's highest (one thread per open connection:
// the number open at a sample jitters with the traffic); answers equal the twin's; no 5xx but
// 503 (and 501 for the unsupported Transfer-Encoding it sends on purpose). Prints a summary and writes JSON to
// SOAK_OUT (default build/soak.json).
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { makeModel, startServer } from "../tests/server/server_lib.mjs";

const SECONDS = +(process.env.SOAK_SECONDS || 1800);
const OUT = process.env.SOAK_OUT || "build/soak.json";
const SHARED = process.env.SHARED;
const model = makeModel("soak.gguf");
const common = ["--ctx-size", "16384", "--parallel", "4", "--max-queue", "8", "--max-connections", "64"];
const srv = await startServer(model, [...common, "--kv-memory", "8M", "--prompt-cache-size", "8"]);
const twin = await startServer(model, [...common, "--kv-memory", "64M", "--prompt-cache-size", "0"]);
const trace = JSON.parse(fs.readFileSync(path.join(SHARED, "traces/opencode-turn1.json"), "utf8"));
const titleTrace = JSON.parse(fs.readFileSync(path.join(SHARED, "traces/opencode-title-request.json"), "utf8"));

const stats = { requests: 0, byStatus: {}, mismatches: 0, compared: 0, errors: [], samples: [] };
const count = (s) => { stats.byStatus[s] = (stats.byStatus[s] || 0) + 1; stats.requests++; };
const t0 = Date.now();
const running = () => Date.now() - t0 < SECONDS * 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const H = { "Content-Type": "application/json" };

function procStatus(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return { rss_kb: +s.match(/VmRSS:\s+(\d+)/)[1], threads: +s.match(/Threads:\s+(\d+)/)[1] };
}

// One request; 503s are retried after Retry-After (as clients do).
async function post(url, route, body, { stream = false, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(url + route, { method: "POST", headers: H, body: JSON.stringify(body), signal });
    count(r.status);
    if (r.status === 503 && attempt < 50) {
      await r.text();
      await sleep(1000 * (+r.headers.get("retry-after") || 1));
      continue;
    }
    if (r.status >= 500 && r.status !== 503) stats.errors.push(`${r.status} ${route}: ${(await r.text()).slice(0, 200)}`);
    if (!stream) return { status: r.status, json: r.status === 200 ? await r.json() : (await r.text(), null) };
    let text = "";
    const dec = new TextDecoder();
    for await (const chunk of r.body) text += dec.decode(chunk);
    let content = "";
    for (const line of text.split("\n")) {
      if (!line.startsWith("data: {")) continue;
      const j = JSON.parse(line.slice(6));
      for (const c of j.choices || []) content += (c.delta && c.delta.content) || c.text || "";
    }
    return { status: r.status, content };
  }
}

function chatBody(history, stream) {
  return { model: "x", messages: [...trace.messages.slice(0, 1), ...history], tools: trace.tools, max_tokens: 12,
    temperature: 0, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) };
}

async function agent(id) {
  let history = [], turn = 0;
  while (running()) {
    history.push({ role: "user", content: `task ${id}.${turn}: read file src/${id}/${turn}.c and summarise` });
    const stream = turn % 2 === 1;
    const body = chatBody(history, stream);
    const a = await post(srv.url, "/v1/chat/completions", body, { stream });
    const b = await post(twin.url, "/v1/chat/completions", body, { stream });
    if (a.status === 200 && b.status === 200) {
      const ta = stream ? a.content : a.json.choices[0].message.content;
      const tb = stream ? b.content : b.json.choices[0].message.content;
      stats.compared++;
      if (ta !== tb) {
        stats.mismatches++;
        stats.errors.push(`mismatch agent ${id} turn ${turn}: ${JSON.stringify(ta)} vs ${JSON.stringify(tb)}`);
      }
      history.push({ role: "assistant", content: tb || "ok" });
    } else {
      history.pop();
    }
    turn++;
    if (history.length > 16) { history = []; turn = 0; }
  }
}

async function title() {
  while (running()) {
    await post(srv.url, "/v1/chat/completions", { ...titleTrace, stream: false, max_tokens: 8, temperature: 0 });
    await sleep(2000);
  }
}

// Raw socket helper: writes parts with pauses, resolves with what came back.
function rawConn(port, parts, { pauseMs = 0, halfClose = false, holdMs = 0 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let got = "";
    s.on("data", (d) => { got += d.toString(); });
    s.on("error", () => {});
    s.on("close", () => resolve(got));
    s.on("connect", async () => {
      for (const p of parts) {
        if (s.destroyed) break;
        s.write(p);
        if (pauseMs) await sleep(pauseMs);
      }
      if (halfClose) s.end();
      if (holdMs) setTimeout(() => s.destroy(), holdMs);
    });
    setTimeout(() => s.destroy(), 60000);
  });
}

async function slow() {
  while (running()) {
    const head = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
    const loris = Array.from({ length: 24 }, () => rawConn(srv.port, [...head].map((c) => c), { pauseMs: 1000 }));
    const trickle = rawConn(srv.port, [head + "Content-Length: 100000\r\n\r\n", ..."x".repeat(40)], { pauseMs: 500 });
    const idle = rawConn(srv.port, ["GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"], { holdMs: 45000 });
    const answers = await Promise.all([...loris, trickle, idle]);
    for (const a of answers) count(a.startsWith("HTTP/1.1 ") ? +a.slice(9, 12) : "closed");
  }
}

async function gone() {
  let i = 0;
  while (running()) {
    const ac = new AbortController();
    try {
      const r = await fetch(srv.url + "/v1/chat/completions", { method: "POST", headers: H, signal: ac.signal,
        body: JSON.stringify(chatBody([{ role: "user", content: `drop me ${i}` }], true)) });
      count(r.status);
      const reader = r.body.getReader();
      await reader.read();
      ac.abort();
    } catch {}
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(), 50);
    try {
      await post(srv.url, "/v1/completions", { prompt: "long ".repeat(1500) + i, max_tokens: 4 }, { signal: ac2.signal });
    } catch {}
    const body = JSON.stringify({ prompt: `half closed ${i}`, max_tokens: 3, temperature: 0 });
    const a = await rawConn(srv.port, [`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`], { halfClose: true });
    const st = (a.match(/HTTP\/1\.1 ([2-5]\d\d)/) || [])[1] || "closed";
    count(st);
    if (st !== "200" && st !== "503") stats.errors.push(`half-closed request got ${st}`);
    i++;
    await sleep(1000);
  }
}

async function storm() {
  let k = 0;
  while (running()) {
    await sleep(20000);
    await Promise.all(Array.from({ length: 16 }, (_, i) =>
      post(srv.url, "/v1/completions", { prompt: `storm ${k} ${i} ` + "budget page token ".repeat(400), max_tokens: 8,
        temperature: 0 }).catch((e) => stats.errors.push(`storm: ${e}`))));
    k++;
  }
}

async function hostile() {
  const bodies = ['{"messages":', '{"messages":[{"role":"user","content":"x"}],"max_tokens":null,"max_tokens":1e999}',
    '{"messages":[{"role":"user\\u0000x","content":"x"}]}', '[]', '{"prompt":' + '['.repeat(5000)];
  while (running()) {
    for (const b of bodies) {
      const r = await fetch(srv.url + "/v1/chat/completions", { method: "POST", headers: H, body: b });
      count(r.status);
      await r.text();
    }
    const r = await fetch(srv.url + "/v1/chat/completions", { method: "POST", headers: { "Content-Type": "text/plain" }, body: "{}" });
    count(r.status);
    await r.text();
    for (const raw of ["GET /health HTTP/1.1\r\nHost: evil.example\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n",
      "GET /nope%00 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n"]) {
      const a = await rawConn(srv.port, [raw], { halfClose: true });
      count(a.startsWith("HTTP/1.1 ") ? +a.slice(9, 12) : "closed");
    }
    await sleep(1000);
  }
}

async function cache() {
  while (running()) {
    await sleep(45000);
    const r = await fetch(srv.url + "/v1/cache", { method: "DELETE" });
    count(r.status);
    await r.text();
  }
}

async function sampler() {
  while (running()) {
    stats.samples.push({ t_s: Math.round((Date.now() - t0) / 1000), ...procStatus(srv.proc.pid) });
    await sleep(10000);
  }
}

const workers = [sampler(), agent(1), agent(2), title(), slow(), gone(), storm(), hostile(), cache()];
await Promise.all(workers.map((w) => w.catch((e) => stats.errors.push(`worker: ${e && e.stack || e}`))));
stats.samples.push({ t_s: Math.round((Date.now() - t0) / 1000), ...procStatus(srv.proc.pid) });

const warm = stats.samples.filter((s) => s.t_s <= SECONDS / 5);
const after = stats.samples.filter((s) => s.t_s > SECONDS / 5);
const max = (a, k) => Math.max(...a.map((s) => s[k]));
const rssGrowthKb = after.length ? max(after, "rss_kb") - max(warm, "rss_kb") : 0;
const threadGrowth = after.length ? max(after, "threads") - max(warm, "threads") : 0;
// 503: the budget's answer; 501: the answer to an unsupported Transfer-Encoding (sent on purpose)
const bad5xx = Object.entries(stats.byStatus).filter(([s]) => +s >= 500 && +s !== 503 && +s !== 501).reduce((a, [, n]) => a + n, 0);
const alive = srv.alive() && twin.alive();
const summary = { seconds: SECONDS, requests: stats.requests, by_status: stats.byStatus, compared: stats.compared,
  mismatches: stats.mismatches, rss_warm_max_kb: max(warm, "rss_kb"), rss_growth_after_warmup_kb: rssGrowthKb,
  threads_warm_max: max(warm, "threads"), thread_growth_after_warmup: threadGrowth, bad_5xx: bad5xx, alive,
  errors: stats.errors.slice(0, 20), samples: stats.samples };
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify(summary, null, 1));
await srv.stop();
await twin.stop();
const pass = alive && stats.mismatches === 0 && bad5xx === 0 && rssGrowthKb <= 32 * 1024 && threadGrowth <= 16 &&
  stats.compared > 0 && !stats.errors.some((e) => !e.startsWith("storm"));
console.log(JSON.stringify({ ...summary, samples: undefined }, null, 1));
console.log(pass ? "SOAK PASS" : "SOAK FAIL");
process.exit(pass ? 0 : 1);
