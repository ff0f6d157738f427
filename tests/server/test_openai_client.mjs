// test_openai_client.mjs — `larder serve` through the official openai npm
// client and raw HTTP: chat and completions, streaming equal to non-streaming,
// usage with cached tokens, stop strings, logprobs, n > 1, errors with the
// right statuses, a client that disconnects mid-stream, and the side routes.
import OpenAI from "openai";
import { check, done, assert, assertEq, makeModel, startServer, raw } from "./server_lib.mjs";

const model = makeModel("chat.gguf");
const srv = await startServer(model, ["--kv-memory", "64M", "--parallel", "4", "--max-body", "1M"]);
const client = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "none", maxRetries: 0 });
const messages = [
  { role: "system", content: "You are a terse assistant." },
  { role: "user", content: "Say something about caches, please. 日本語 too; \"quotes\" <b>&</b>" },
];

let greedy;
await check("chat_completion_shape_and_usage", async () => {
  const r = await client.chat.completions.create({ model: "any", messages, max_tokens: 16, temperature: 0 });
  assert(r.id.startsWith("chatcmpl-"), "id");
  assertEq(r.object, "chat.completion");
  assert(Number.isInteger(r.created), "created");
  assertEq(r.choices.length, 1);
  assertEq(r.choices[0].message.role, "assistant");
  assert(typeof r.choices[0].message.content === "string", "content");
  assert(["stop", "length"].includes(r.choices[0].finish_reason), "finish_reason");
  assert(r.usage.prompt_tokens > 20, "prompt_tokens");
  assert(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 16, "completion_tokens");
  assertEq(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert(r.usage.prompt_tokens_details && Number.isInteger(r.usage.prompt_tokens_details.cached_tokens), "cached_tokens");
  greedy = r;
});

await check("second_identical_request_hits_the_cache", async () => {
  const r = await client.chat.completions.create({ model: "any", messages, max_tokens: 16, temperature: 0 });
  assertEq(r.choices[0].message.content, greedy.choices[0].message.content, "greedy output changed with the cache");
  assert(r.usage.prompt_tokens_details.cached_tokens > 0, "no cached tokens on a repeated prompt");
  assert(r.usage.prompt_tokens_details.cached_tokens < r.usage.prompt_tokens, "the last prompt token must be recomputed");
});

await check("streamed_text_equals_non_streamed", async () => {
  const stream = await client.chat.completions.create({ model: "any", messages, max_tokens: 16, temperature: 0,
    stream: true, stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null, role = null;
  for await (const chunk of stream) {
    assertEq(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta.role) role = c.delta.role;
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assertEq(role, "assistant");
  assertEq(text, greedy.choices[0].message.content);
  assertEq(finish, greedy.choices[0].finish_reason);
  assert(usage && usage.completion_tokens === greedy.usage.completion_tokens, "usage chunk");
});

await check("completions_endpoint_and_length", async () => {
  const r = await client.completions.create({ model: "any", prompt: "The cache is", max_tokens: 5, temperature: 0 });
  assertEq(r.object, "text_completion");
  assertEq(r.choices[0].finish_reason, "length");
  assertEq(r.usage.completion_tokens, 5);
  assert(typeof r.choices[0].text === "string");
});

await check("stop_string_is_not_emitted", async () => {
  const full = await client.completions.create({ model: "any", prompt: "Once upon", max_tokens: 24, temperature: 0 });
  const text = full.choices[0].text;
  assert(text.length >= 4, "need some text");
  const stop = text.slice(2, 4);
  const r = await client.completions.create({ model: "any", prompt: "Once upon", max_tokens: 24, temperature: 0, stop: [stop] });
  assertEq(r.choices[0].text, text.slice(0, text.indexOf(stop)));
  assertEq(r.choices[0].finish_reason, "stop");
});

await check("logprobs_chat_and_streamed", async () => {
  const r = await client.chat.completions.create({ model: "any", messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3 });
  const lp = r.choices[0].logprobs.content;
  assertEq(lp.length, r.usage.completion_tokens);
  for (const t of lp) {
    assert(t.logprob <= 0, "logprob <= 0");
    assertEq(t.top_logprobs.length, 3);
    assert(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob, "top sorted");
    assert(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-4, "greedy picks the top");
  }
  const s = await client.chat.completions.create({ model: "any", messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2, stream: true });
  let n = 0;
  for await (const chunk of s) for (const c of chunk.choices) if (c.logprobs && c.logprobs.content) n += c.logprobs.content.length;
  assertEq(n, lp.length);
});

await check("n_choices_share_the_prompt", async () => {
  const r = await client.chat.completions.create({ model: "any", messages, max_tokens: 6, temperature: 1.0, seed: 5, n: 3 });
  assertEq(r.choices.length, 3);
  assertEq(r.choices.map((c) => c.index), [0, 1, 2]);
  const again = await client.chat.completions.create({ model: "any", messages, max_tokens: 6, temperature: 1.0, seed: 5, n: 3 });
  assertEq(again.choices.map((c) => c.message.content), r.choices.map((c) => c.message.content), "same seed, same output");
});

await check("errors_have_openai_shape_and_status", async () => {
  const cases = [
    ["POST", "/v1/chat/completions", "{not json", 400],
    ["POST", "/v1/chat/completions", JSON.stringify({ messages: "hi" }), 400],
    ["POST", "/v1/chat/completions", JSON.stringify({ messages: [] }), 400],
    ["POST", "/v1/chat/completions", JSON.stringify({ messages, max_tokens: "ten" }), 400],
    ["POST", "/v1/chat/completions", JSON.stringify({ messages, temperature: -3 }), 400],
    ["POST", "/v1/completions", JSON.stringify({ prompt: [1, 2, 1e9] }), 400],
    ["POST", "/v1/completions", JSON.stringify({ prompt: "x".repeat(20000) }), 400],
    ["GET", "/v1/nothing", undefined, 404],
  ];
  for (const [method, p, body, status] of cases) {
    const r = await raw(srv.url, method, p, body);
    assertEq(r.status, status, `${method} ${p} ${String(body).slice(0, 40)}`);
    assert(r.json && r.json.error && typeof r.json.error.message === "string", "error object");
  }
  const overflow = await raw(srv.url, "POST", "/v1/completions", JSON.stringify({ prompt: "x".repeat(20000) }));
  assert(/token/.test(overflow.json.error.message) && /2048/.test(overflow.json.error.message), "overflow names tokens and the limit: " + overflow.json.error.message);
  const invalidUtf8 = Buffer.concat([Buffer.from('{"prompt":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
  const r8 = await raw(srv.url, "POST", "/v1/completions", invalidUtf8);
  assertEq(r8.status, 400);
  const big = await raw(srv.url, "POST", "/v1/completions", JSON.stringify({ prompt: "y".repeat(2 * 1024 * 1024) }));
  assertEq(big.status, 413);
  assert((await raw(srv.url, "GET", "/health")).status === 200, "still up");
});

await check("disconnect_mid_stream_cancels", async () => {
  const ac = new AbortController();
  const resp = await fetch(srv.url + "/v1/completions", { method: "POST", signal: ac.signal,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "Tell a long story", max_tokens: 1000, temperature: 0, stream: true }) });
  const reader = resp.body.getReader();
  await reader.read();
  ac.abort();
  // The server notices within a step or two; a new request is served promptly.
  const t0 = Date.now();
  const r = await client.completions.create({ model: "any", prompt: "Hi", max_tokens: 2, temperature: 0 });
  assertEq(r.choices.length, 1);
  assert(Date.now() - t0 < 20000, "server stayed busy after the disconnect");
  assert(srv.alive(), "server alive");
});

// A client that goes away stops its generation: streamed (noticed at the
// next write) and non-streamed (noticed by polling the socket while the
// answer is computed). The request asks for every token the context allows
// (~2000); the server's log line must show it stopped well short of that, with
// the cancellation logged, and the pool must hold no running sequence after.
for (const stream of [true, false]) {
  await check(`disconnect_${stream ? "streamed" : "non_streamed"}_stops_generation`, async () => {
    const before = srv.log().length;
    const ac = new AbortController();
    const p = fetch(srv.url + "/v1/completions", { method: "POST", signal: ac.signal,
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: `Tell a long story number ${stream}`, max_tokens: 100000, temperature: 1, seed: 3, stream }) });
    if (stream) {
      const resp = await p;
      await resp.body.getReader().read();
    } else {
      p.catch(() => {});
      await new Promise((r) => setTimeout(r, 30));
    }
    ac.abort();
    // the request's log line, then the cancellation's (in that order)
    for (let i = 0; i < 100 && !/client went away/.test(srv.log().slice(before)); i++)
      await new Promise((r) => setTimeout(r, 50));
    assert(/client went away/.test(srv.log().slice(before)), `cancellation not logged:\n${srv.log().slice(before)}`);
    const line = srv.log().slice(before).split("\n").find((l) => /generated=\d+/.test(l));
    assert(line, `no request log line:\n${srv.log().slice(before)}`);
    const generated = +/generated=(\d+)/.exec(line)[1];
    assert(generated < 1500, `generated ${generated} tokens after the client left`);
    let running = -1; // the engine drops the sequence at its next step
    for (let i = 0; i < 40 && running !== 0; i++) {
      if (i) await new Promise((r) => setTimeout(r, 50));
      running = +/^larder_kv_pool_bytes_running (\S+)/m.exec((await raw(srv.url, "GET", "/metrics")).text)[1];
    }
    assertEq(running, 0, "running KV 2 s after the disconnect");
  });
}

await check("side_routes", async () => {
  const models = await client.models.list();
  assert(models.data.length === 1 && models.data[0].object === "model", "models");
  const m = await raw(srv.url, "GET", "/metrics");
  assertEq(m.status, 200);
  for (const k of ["larder_requests_total", "larder_prompt_tokens_total", "larder_cached_prompt_tokens_total",
                   "larder_generated_tokens_total", "larder_time_to_first_token_seconds_bucket",
                   "larder_inter_token_latency_seconds_bucket", "larder_kv_pool_bytes_total", "larder_cache_entries",
                   "larder_resident_memory_peak_bytes"])
    assert(m.text.includes(k), "metrics has " + k);
  const c = await raw(srv.url, "GET", "/v1/cache");
  assertEq(c.status, 200);
  assert(c.json.entries >= 1, "cache has entries");
  const d = await raw(srv.url, "DELETE", "/v1/cache");
  assertEq(d.status, 200);
  const c2 = await raw(srv.url, "GET", "/v1/cache");
  assertEq(c2.json.entries, 0);
});

const code = await srv.stop();
await check("clean_shutdown", async () => assert(code && (code.code === 0 || code.sig === "SIGTERM"), JSON.stringify(code)));

// Reasoning: a template whose generation prompt opens <think> (DeepSeek-R1
// distill, with enable_thinking) puts the output in reasoning_content.
const r1 = makeModel("r1.gguf", ["--chat-template", process.env.SHARED + "/templates/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"]);
const srv3 = await startServer(r1, []);
await check("reasoning_content_when_the_prompt_opens_think", async () => {
  const c3 = new OpenAI({ baseURL: srv3.url + "/v1", apiKey: "none", maxRetries: 0 });
  const on = await c3.chat.completions.create({ model: "any", messages, max_tokens: 12, temperature: 0,
    chat_template_kwargs: { enable_thinking: true } });
  const m = on.choices[0].message;
  assert(typeof m.reasoning_content === "string" && m.reasoning_content.length > 0, "no reasoning_content: " + JSON.stringify(m));
  const off = await c3.chat.completions.create({ model: "any", messages, max_tokens: 12, temperature: 0 });
  assert(!off.choices[0].message.reasoning_content, "reasoning without <think>: " + JSON.stringify(off.choices[0].message));
  // Streamed, the same reasoning arrives as reasoning_content deltas.
  const s = await c3.chat.completions.create({ model: "any", messages, max_tokens: 12, temperature: 0, stream: true,
    chat_template_kwargs: { enable_thinking: true } });
  let reasoning = "";
  for await (const chunk of s) for (const c of chunk.choices) if (c.delta.reasoning_content) reasoning += c.delta.reasoning_content;
  assertEq(reasoning, m.reasoning_content);
});
await srv3.stop();

// API key and CORS.
const srv2 = await startServer(model, ["--api-key", "k3y", "--cors-origin", "http://ui.local"]);
await check("api_key_required_except_health", async () => {
  assertEq((await raw(srv2.url, "GET", "/v1/models")).status, 401);
  assertEq((await raw(srv2.url, "GET", "/v1/models", undefined, { Authorization: "Bearer k3y" })).status, 200);
  assertEq((await raw(srv2.url, "GET", "/health")).status, 200);
  const r = await raw(srv2.url, "GET", "/health");
  assertEq(r.headers.get("access-control-allow-origin"), "http://ui.local");
});
await srv2.stop();
done();
