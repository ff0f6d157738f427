// budget_storm.mjs — issue 5's budget target: N concurrent two-turn
// conversations of ~1.7k tokens each against a server whose --kv-memory
// holds far less than their total. Reports how many complete, how many 503s
// were retried, wall time, and resident memory growth (peak - baseline after
// a warm-up request) against the KV budget.
// usage: node bench/budget_storm.mjs --url URL [--conversations 24] [--words 1300]
const args = Object.fromEntries(process.argv.slice(2).reduce((a, x, i, all) => {
  if (x.startsWith("--")) a.push([x.slice(2), all[i + 1]]);
  return a;
}, []));
const url = args.url || "http://127.0.0.1:8080";
const n = +(args.conversations || 24), words = +(args.words || 1300);
const vocab = ["the", "cache", "page", "server", "model", "token", "agent", "tool", "file", "memory", "budget", "prompt"];
function text(seed, k) {
  let x = seed;
  return Array.from({ length: k }, () => vocab[(x = (x * 1103515245 + 12345) % 2147483648) % vocab.length]).join(" ");
}
async function metric(name) {
  const t = await (await fetch(url + "/metrics")).text();
  const l = t.split("\n").find((s) => s.startsWith(name + " "));
  return l ? +l.split(" ")[1] : NaN;
}
let retries503 = 0, errors = 0;
async function complete(prompt) {
  for (;;) {
    const r = await fetch(url + "/v1/completions", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt, max_tokens: 16, temperature: 0 }) });
    if (r.status === 503) { retries503++; await new Promise((res) => setTimeout(res, 200)); continue; }
    const j = await r.json();
    if (r.status !== 200) { errors++; throw new Error(JSON.stringify(j)); }
    return j.choices[0].text;
  }
}
await complete("warm up");
const rss0 = await metric("larder_resident_memory_bytes");
const budget = await metric("larder_kv_pool_bytes_total");
const t0 = performance.now();
let completed = 0;
await Promise.all(Array.from({ length: n }, async (_, i) => {
  try {
    const p1 = text(1000 + i, words);
    const a = await complete(p1);
    await complete(p1 + a + " " + text(5000 + i, 60));
    completed++;
  } catch (e) { console.error(String(e).slice(0, 200)); }
}));
const wall = (performance.now() - t0) / 1000;
const peak = await metric("larder_resident_memory_peak_bytes");
console.log(JSON.stringify({ conversations: n, completed, errors, retries503, wall_s: +wall.toFixed(1),
  kv_budget_mib: +(budget / 1048576).toFixed(1), rss_growth_mib: +((peak - rss0) / 1048576).toFixed(1),
  preemptions: await metric("larder_preemptions_total") }));
