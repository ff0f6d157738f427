// test_cache_budget.mjs — the prompt cache never changes answers, and the KV
// budget holds under load:
//  * greedy output with the cache on equals the cache off (--prompt-cache-size 0)
//    for follow-up turns, branched conversations and concurrent requests that
//    share a prefix;
//  * 40 two-turn conversations against a --kv-memory far below their total:
//    every one completes (503 with Retry-After is the only refusal allowed),
//    the pool never reports more than its budget, resident memory grows by
//    at most the budget plus a fixed allowance.
import { check, done, assert, assertEq, makeModel, startServer, raw } from "./server_lib.mjs";

const model = makeModel("cache.gguf");
const BUDGET = 512 * 1024; // 2048 tokens of this model's 256-byte KV
const system = "System: you are a helpful assistant for a coding agent. Follow the rules, use the tools. ".repeat(3);
function convo(i) {
  return `${system}\nUser ${i}: please look at file number ${i * 7919 % 1000} and tell me what it does.`;
}

async function complete(url, prompt, maxTokens = 8) {
  for (let attempt = 0; attempt < 400; attempt++) {
    const r = await raw(url, "POST", "/v1/completions", JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0 }));
    if (r.status === 503) {
      assert(r.headers.get("retry-after"), "503 without Retry-After");
      await new Promise((res) => setTimeout(res, 100));
      continue;
    }
    if (r.status !== 200) throw new Error(`status ${r.status}: ${r.text.slice(0, 200)}`);
    return { text: r.json.choices[0].text, cached: r.json.usage.prompt_tokens_details.cached_tokens, prompt: r.json.usage.prompt_tokens };
  }
  throw new Error("still 503 after many retries");
}

async function metric(url, name) {
  const m = await raw(url, "GET", "/metrics");
  const line = m.text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(" ")[1]) : NaN;
}

// Reference answers: cache off, one request at a time.
const ref = await startServer(model, ["--prompt-cache-size", "0", "--kv-memory", "16M", "--parallel", "1"]);
const refTurn1 = [], refTurn2 = [];
for (let i = 0; i < 40; i++) {
  const a = await complete(ref.url, convo(i));
  refTurn1.push(a.text);
  const b = await complete(ref.url, convo(i) + a.text + `\nUser: and the next file, ${i}?`);
  refTurn2.push(b.text);
}
await check("cache_off_reports_no_cached_tokens", async () => {
  const a = await complete(ref.url, convo(0));
  assertEq(a.cached, 0);
});
await ref.stop();

const srv = await startServer(model, ["--kv-memory", String(BUDGET), "--parallel", "4", "--max-queue", "8", "--prompt-cache-size", "10"]);
// Baseline after one request: the mmapped weights are resident by then.
await complete(srv.url, "warm-up request", 2);
const rss0 = await metric(srv.url, "larder_resident_memory_bytes");
let maxKv = 0, totalKv = await metric(srv.url, "larder_kv_pool_bytes_total");
const sampler = setInterval(async () => {
  try {
    const used = (await metric(srv.url, "larder_kv_pool_bytes_running")) + (await metric(srv.url, "larder_kv_pool_bytes_cached_idle"));
    if (used > maxKv) maxKv = used;
  } catch {}
}, 50);

const got1 = [], got2 = [], cached2 = [];
await check("forty_conversations_complete_within_budget", async () => {
  let next = 0;
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= 40) return;
      const a = await complete(srv.url, convo(i));
      got1[i] = a.text;
      const b = await complete(srv.url, convo(i) + a.text + `\nUser: and the next file, ${i}?`);
      got2[i] = b.text;
      cached2[i] = b.cached;
    }
  }
  await Promise.all(Array.from({ length: 10 }, worker));
  assertEq(got1.filter((x) => x !== undefined).length, 40);
});
clearInterval(sampler);

await check("cache_on_equals_cache_off_under_concurrency", async () => {
  let same = 0;
  for (let i = 0; i < 40; i++) same += (got1[i] === refTurn1[i]) + (got2[i] === refTurn2[i]);
  assertEq(same, 80, `identical answers`);
});
await check("follow_up_turns_hit_the_cache", async () => {
  assert(cached2.filter((c) => c > 0).length >= 20, `follow-ups with cached tokens: ${cached2.filter((c) => c > 0).length}/40`);
});
await check("pool_never_above_budget", async () => {
  assert(totalKv <= BUDGET, `pool ${totalKv} > budget ${BUDGET}`);
  assert(maxKv <= totalKv, `used ${maxKv} > pool ${totalKv}`);
  const peak = await metric(srv.url, "larder_resident_memory_peak_bytes");
  assert(peak - rss0 <= BUDGET + 48 * 1048576, `RSS grew by ${peak - rss0}`);
});
await check("branched_conversations_share_and_stay_correct", async () => {
  const base = convo(100) + refTurn1[0];
  const a = await complete(srv.url, base + "\nUser: branch A");
  const b = await complete(srv.url, base + "\nUser: branch B");
  const refSrv = await startServer(model, ["--prompt-cache-size", "0", "--parallel", "1"]);
  const ra = await complete(refSrv.url, base + "\nUser: branch A");
  const rb = await complete(refSrv.url, base + "\nUser: branch B");
  await refSrv.stop();
  assertEq([a.text, b.text], [ra.text, rb.text]);
  assert(b.cached > 0, "the shared trunk was not reused");
});
await srv.stop();
done();
