// followup_ttft.mjs — issue 5's follow-up target: a completion whose prompt
// extends a cached ~3.5k-token prompt by ~50 tokens must start in <= 1/50 of
// the cold time to first token. Streams both requests, timing the first
// chunk. usage: node bench/followup_ttft.mjs --url URL [--words 2600] [--append-words 40]
const args = Object.fromEntries(process.argv.slice(2).reduce((a, x, i, all) => {
  if (x.startsWith("--")) a.push([x.slice(2), all[i + 1]]);
  return a;
}, []));
const url = args.url || "http://127.0.0.1:8080";
const words = +(args.words || 2600), append = +(args["append-words"] || 40);
const vocab = ["the", "cache", "page", "server", "model", "token", "agent", "tool", "file", "memory", "budget", "prompt"];
let x = 7;
const text = (n) => Array.from({ length: n }, () => vocab[(x = (x * 1103515245 + 12345) % 2147483648) % vocab.length]).join(" ");
const base = text(words), tail = text(append);
async function ttft(prompt) {
  const t0 = performance.now();
  const r = await fetch(url + "/v1/completions", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: 4, temperature: 0, stream: true, stream_options: { include_usage: true } }) });
  const reader = r.body.getReader(), dec = new TextDecoder();
  let first = null, buf = "", usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    if (first === null && buf.includes('"text"')) first = performance.now() - t0;
    const m = buf.match(/"usage":(\{[^}]*\{[^}]*\}\})/);
    if (m) usage = JSON.parse(m[1]);
  }
  return { ttft_ms: +first.toFixed(1), usage };
}
const cold = await ttft(base);
const warm = await ttft(base + " " + tail);
console.log(JSON.stringify({ cold, warm, ratio: +(warm.ttft_ms / cold.ttft_ms).toFixed(4) }));
