// test_anthropic_messages.mjs — POST /v1/messages and /v1/messages/count_tokens
// through the official Anthropic SDK (@anthropic-ai/sdk) and raw HTTP.
//
// The oracle for the conversion is larder's own OpenAI route: a Messages
// request and the equivalent /v1/chat/completions request render the same
// prompt, so at temperature 0 they must report the same prompt size and
// produce the same text. Also: streamed == non-streamed, Anthropic's event
// order, stop_sequences, the billing-header block (dropped: turn 2 of a
// conversation is >= 95% cached even though the header changes; kept with
// --keep-billing-header: it is not), x-api-key auth, and a 400 in
// Anthropic's error shape for every malformed body.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { check, done, assert, assertEq, makeModel, startServer, raw } from "./server_lib.mjs";

const model = makeModel("anthropic.gguf", ["--ctx", "4096"]);
const srv = await startServer(model, ["--kv-memory", "64M", "--api-key", "sekret"]);
const client = new Anthropic({ baseURL: srv.url, apiKey: "sekret", maxRetries: 0 });
const openai = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "sekret", maxRetries: 0 });
const auth = { "x-api-key": "sekret" };

const SYSTEM = Array.from({ length: 60 }, (_, i) => `Rule ${i}: answer questions about caches carefully and briefly.`).join("\n");
const billing = (cch) => `x-anthropic-billing-header: cc_version=2.1.328.867; cc_entrypoint=sdk-cli; cch=${cch};`;
const system = (cch) => [{ type: "text", text: billing(cch) }, { type: "text", text: SYSTEM, cache_control: { type: "ephemeral" } }];
const user1 = "What does a prefix cache keep? 日本語 \"quotes\" <b>&</b>";

const textOf = (m) => m.content.filter((b) => b.type === "text").map((b) => b.text).join("");
const total = (u) => u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;

let greedy;
await check("message_shape_usage_and_same_answer_as_chat_completions", async () => {
  const m = await client.messages.create({ model: "claude-x", max_tokens: 12, temperature: 0, system: SYSTEM,
    messages: [{ role: "user", content: user1 }] });
  assert(m.id.startsWith("msg_"), `id ${m.id}`);
  assertEq(m.type, "message");
  assertEq(m.role, "assistant");
  assertEq(m.model, "claude-x");
  assert(["end_turn", "max_tokens"].includes(m.stop_reason), `stop_reason ${m.stop_reason}`);
  assertEq(m.stop_sequence, null);
  assert(m.usage.output_tokens > 0 && m.usage.output_tokens <= 12, "output_tokens");
  assert(Number.isInteger(m.usage.cache_read_input_tokens), "cache_read_input_tokens");
  const c = await openai.chat.completions.create({ model: "x", max_tokens: 12, temperature: 0,
    messages: [{ role: "system", content: SYSTEM }, { role: "user", content: user1 }] });
  assertEq(total(m.usage), c.usage.prompt_tokens, "prompt size differs from the chat route's");
  assertEq(textOf(m), c.choices[0].message.content, "greedy text differs from the chat route's");
  assertEq(m.stop_reason, c.choices[0].finish_reason === "length" ? "max_tokens" : "end_turn");
  greedy = m;
});

await check("streamed_events_in_order_and_equal_to_non_streamed", async () => {
  const stream = await client.messages.create({ model: "claude-x", max_tokens: 12, temperature: 0, system: SYSTEM,
    messages: [{ role: "user", content: user1 }], stream: true });
  const types = [];
  let text = "", stop = null, usage = null, open = -1;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === "content_block_start") { assertEq(ev.index, open + 1, "block index"); open = ev.index; assertEq(ev.content_block.type, "text"); }
    if (ev.type === "content_block_delta") { assertEq(ev.index, open); assertEq(ev.delta.type, "text_delta"); text += ev.delta.text; }
    if (ev.type === "message_delta") { stop = ev.delta.stop_reason; usage = ev.usage; }
  }
  assertEq(types[0], "message_start");
  assertEq(types[types.length - 1], "message_stop");
  assertEq(types[types.length - 2], "message_delta");
  assertEq(types[types.length - 3], "content_block_stop");
  assert(types.indexOf("content_block_start") < types.indexOf("content_block_delta"), `order ${types}`);
  assertEq(text, textOf(greedy));
  assertEq(stop, greedy.stop_reason);
  assertEq(usage.output_tokens, greedy.usage.output_tokens);
  // and through the SDK's own accumulator
  const final = await client.messages.stream({ model: "claude-x", max_tokens: 12, temperature: 0, system: SYSTEM,
    messages: [{ role: "user", content: user1 }] }).finalMessage();
  assertEq(textOf(final), textOf(greedy));
  assertEq(final.stop_reason, greedy.stop_reason);
});

await check("stop_sequences_stop_and_are_reported", async () => {
  const full = textOf(greedy);
  const words = full.split(/(?= )/).filter((w) => w.trim().length > 0);
  assert(words.length >= 3, `too few words in ${JSON.stringify(full)}`);
  const stopAt = words[2];
  const want = full.slice(0, full.indexOf(stopAt)).trim();
  for (const stream of [false, true]) {
    const args = { model: "claude-x", max_tokens: 12, temperature: 0, system: SYSTEM,
      messages: [{ role: "user", content: user1 }], stop_sequences: ["\u0001never", stopAt] };
    const m = stream ? await client.messages.stream(args).finalMessage() : await client.messages.create(args);
    assertEq(m.stop_reason, "stop_sequence", `stream=${stream}`);
    assertEq(m.stop_sequence, stopAt, `stream=${stream}`);
    assertEq(textOf(m), want, `stream=${stream}`);
  }
});

await check("tool_round_trip_renders_as_the_chat_route_does", async () => {
  const tools = [{ name: "read_file", description: "Read a file", input_schema: { type: "object",
    properties: { path: { type: "string" }, lines: { type: "integer" } }, required: ["path"] } }];
  const msgs = [
    { role: "user", content: [{ type: "text", text: "Read main.c please" }] },
    { role: "assistant", content: [{ type: "thinking", thinking: "I should read it.", signature: "sig" },
      { type: "text", text: "Reading it." },
      { type: "tool_use", id: "toolu_01", name: "read_file", input: { path: "main.c", lines: 3 } }] },
    { role: "user", content: [
      { type: "tool_result", tool_use_id: "toolu_01", content: [{ type: "text", text: "int main(void) {" }, { type: "text", text: "}" }] },
      { type: "text", text: "What is in it?" }] },
    { role: "assistant", content: [{ type: "tool_use", id: "toolu_02", name: "read_file", input: { path: "x.c" } }] },
    { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_02", content: "no such file", is_error: true }] },
  ];
  const oai = [
    { role: "user", content: "Read main.c please" },
    { role: "assistant", content: "Reading it.", reasoning_content: "I should read it.", tool_calls: [{ id: "toolu_01", type: "function",
      function: { name: "read_file", arguments: JSON.stringify({ path: "main.c", lines: 3 }) } }] },
    { role: "tool", tool_call_id: "toolu_01", content: "int main(void) {\n}" },
    { role: "user", content: "What is in it?" },
    { role: "assistant", content: "", tool_calls: [{ id: "toolu_02", type: "function",
      function: { name: "read_file", arguments: JSON.stringify({ path: "x.c" }) } }] },
    { role: "tool", tool_call_id: "toolu_02", content: "Error: no such file" },
  ];
  const oaiTools = tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.input_schema } }));
  // each tool_choice as the chat route's equivalent (any and tool force a call: the prompt ends with its opener)
  const chatChoice = { auto: "auto", any: "required", tool: { type: "function", function: { name: "read_file" } } };
  for (const tool_choice of [undefined, { type: "auto" }, { type: "any" }, { type: "tool", name: "read_file" }]) {
    const m = await client.messages.create({ model: "x", max_tokens: 8, temperature: 0, tools, tool_choice, messages: msgs });
    const c = await openai.chat.completions.create({ model: "x", max_tokens: 8, temperature: 0, tools: oaiTools, messages: oai,
      tool_choice: tool_choice && chatChoice[tool_choice.type] });
    assertEq(total(m.usage), c.usage.prompt_tokens, `prompt size (tool_choice ${JSON.stringify(tool_choice)})`);
    assertEq(textOf(m), c.choices[0].message.content ?? "", "greedy text");
  }
  const counted = await client.messages.countTokens({ model: "x", tools, messages: msgs });
  const c = await openai.chat.completions.create({ model: "x", max_tokens: 1, tools: oaiTools, messages: oai });
  assertEq(counted.input_tokens, c.usage.prompt_tokens, "count_tokens");
  // tool_choice none: the tools stay out of the prompt (the chat route's none, and no tools at all), no calls are parsed
  const none = await client.messages.create({ model: "x", max_tokens: 4, temperature: 0, tools, tool_choice: { type: "none" }, messages: msgs });
  const cNone = await openai.chat.completions.create({ model: "x", max_tokens: 1, tools: oaiTools, tool_choice: "none", messages: oai });
  const cNoTools = await openai.chat.completions.create({ model: "x", max_tokens: 1, messages: oai });
  assertEq(total(none.usage), cNone.usage.prompt_tokens);
  assertEq(cNone.usage.prompt_tokens, cNoTools.usage.prompt_tokens, "tool_choice none left the tools in the prompt");
  assert(cNone.usage.prompt_tokens < c.usage.prompt_tokens, "the tools are not in the prompt at all");
  // server tools are not the model's: accepted and left out
  const withServerTool = await client.messages.countTokens({ model: "x", messages: msgs,
    tools: [...tools, { type: "web_search_20250305", name: "web_search", max_uses: 2 }] });
  assertEq(withServerTool.input_tokens, counted.input_tokens);
});

await check("thinking_and_metadata_accepted", async () => {
  for (const thinking of [{ type: "enabled", budget_tokens: 1024 }, { type: "disabled" }]) {
    const m = await client.messages.create({ model: "x", max_tokens: 4, temperature: 0, thinking, top_k: 5, top_p: 0.9,
      metadata: { user_id: "u1" }, messages: [{ role: "user", content: "hi" }] });
    assertEq(m.type, "message");
  }
});

// Turn 1, then turn 2 = turn 1's history + the answer + a new question, each
// with a new billing header (as Claude Code sends): the header is dropped, so
// the whole of turn 1 comes from the cache.
async function twoTurns(c, cch1, cch2) {
  const t1 = [{ role: "user", content: [{ type: "text", text: user1 }] }];
  const m1 = await c.messages.create({ model: "x", max_tokens: 16, temperature: 0, system: system(cch1), messages: t1 });
  const t2 = [...t1, { role: "assistant", content: m1.content }, { role: "user", content: [{ type: "text", text: "And then?" }] }];
  const m2 = await c.messages.stream({ model: "x", max_tokens: 4, temperature: 0, system: system(cch2), messages: t2 }).finalMessage();
  return { m1, m2 };
}

await check("turn_2_hits_the_cache_despite_a_new_billing_header", async () => {
  const { m1, m2 } = await twoTurns(client, "a1b2c", "f00d5");
  const ratio = m2.usage.cache_read_input_tokens / total(m2.usage);
  console.log(`# turn 2: ${m2.usage.cache_read_input_tokens} of ${total(m2.usage)} prompt tokens cached (${(100 * ratio).toFixed(1)}%)`);
  assert(total(m2.usage) > total(m1.usage), "turn 2 does not extend turn 1");
  assert(ratio >= 0.95, `turn 2 only ${(100 * ratio).toFixed(1)}% cached`);
  assertEq(m2.usage.input_tokens, total(m2.usage) - m2.usage.cache_read_input_tokens);
  // the header block adds nothing to the prompt
  const withHeader = await client.messages.countTokens({ model: "x", system: system("zz"), messages: [{ role: "user", content: "hi" }] });
  const without = await client.messages.countTokens({ model: "x", system: SYSTEM, messages: [{ role: "user", content: "hi" }] });
  assertEq(withHeader.input_tokens, without.input_tokens);
  assert(/dropped Claude Code's x-anthropic-billing-header/.test(srv.log()), "the drop is not logged");
  assertEq(srv.log().match(/dropped Claude Code's x-anthropic-billing-header/g).length, 1, "logged more than once");
});

await check("keep_billing_header_keeps_it_and_loses_the_cache", async () => {
  const kept = await startServer(model, ["--kv-memory", "64M", "--keep-billing-header"]);
  try {
    const c = new Anthropic({ baseURL: kept.url, apiKey: "none", maxRetries: 0 });
    const withHeader = await c.messages.countTokens({ model: "x", system: system("zz"), messages: [{ role: "user", content: "hi" }] });
    const without = await c.messages.countTokens({ model: "x", system: SYSTEM, messages: [{ role: "user", content: "hi" }] });
    assert(withHeader.input_tokens > without.input_tokens, "the header was not kept");
    const { m2 } = await twoTurns(c, "a1b2c", "f00d5");
    assert(m2.usage.cache_read_input_tokens < 0.5 * total(m2.usage), `turn 2 cached ${m2.usage.cache_read_input_tokens} with a changed header`);
  } finally { await kept.stop(); }
});

await check("auth_by_x_api_key_or_bearer", async () => {
  const bad = new Anthropic({ baseURL: srv.url, apiKey: "wrong", maxRetries: 0 });
  let e = null;
  try { await bad.messages.create({ model: "x", max_tokens: 1, messages: [{ role: "user", content: "hi" }] }); } catch (x) { e = x; }
  assert(e instanceof Anthropic.AuthenticationError, `expected 401, got ${e}`);
  const body = JSON.stringify({ model: "x", max_tokens: 1, messages: [{ role: "user", content: "hi" }] });
  assertEq((await raw(srv.url, "POST", "/v1/messages", body, { Authorization: "Bearer sekret" })).status, 200);
  assertEq((await raw(srv.url, "POST", "/v1/messages", body, {})).status, 401);
});

await check("malformed_bodies_get_400_in_anthropic_shape", async () => {
  const u = [{ role: "user", content: "hi" }];
  const bodies = [
    "not json", "[1,2]", "{\"max_tokens\":5,", "\"str\"", "{}", "\u00ff",
    { messages: u },
    { max_tokens: 0, messages: u },
    { max_tokens: "5", messages: u },
    { max_tokens: 5, messages: [] },
    { max_tokens: 5, messages: "hi" },
    { max_tokens: 5, messages: [{ role: "robot", content: "x" }] },
    { max_tokens: 5, messages: [{ role: "system", content: [{ type: "tool_result", tool_use_id: "a" }] }] },
    { max_tokens: 5, messages: [{ role: "user" }] },
    { max_tokens: 5, messages: [{ role: "user", content: 3 }] },
    { max_tokens: 5, messages: [{ role: "user", content: [{ text: "no type" }] }] },
    { max_tokens: 5, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "" } }] }] },
    { max_tokens: 5, messages: [{ role: "user", content: [{ type: "text", text: 5 }] }] },
    { max_tokens: 5, messages: [{ role: "assistant", content: [{ type: "tool_use", name: "f", input: {} }] }] },
    { max_tokens: 5, messages: [{ role: "assistant", content: [{ type: "tool_use", id: "a", name: "f", input: "x" }] }] },
    { max_tokens: 5, messages: [{ role: "assistant", content: [{ type: "tool_result", tool_use_id: "a", content: "x" }] }] },
    { max_tokens: 5, messages: [{ role: "user", content: [{ type: "tool_result", content: "x" }] }] },
    { max_tokens: 5, messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "a", content: 5 }] }] },
    { max_tokens: 5, messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "a", is_error: "yes" }] }] },
    { max_tokens: 5, messages: u, system: 5 },
    { max_tokens: 5, messages: u, system: [{ type: "image" }] },
    { max_tokens: 5, messages: u, tools: {} },
    { max_tokens: 5, messages: u, tools: [{ name: "f" }] },
    { max_tokens: 5, messages: u, tools: [{ input_schema: {} }] },
    { max_tokens: 5, messages: u, tool_choice: "auto" },
    { max_tokens: 5, messages: u, tool_choice: { type: "sometimes" } },
    { max_tokens: 5, messages: u, tool_choice: { type: "tool", name: "missing" } },
    { max_tokens: 5, messages: u, stop_sequences: "x" },
    { max_tokens: 5, messages: u, stop_sequences: [1] },
    { max_tokens: 5, messages: u, temperature: "hot" },
    { max_tokens: 5, messages: u, top_k: -1 },
    { max_tokens: 5, messages: u, thinking: { type: "maybe" } },
    { max_tokens: 5, messages: u, thinking: "on" },
    { max_tokens: 5, messages: u, metadata: 1 },
    { max_tokens: 5, messages: u, stream: "yes" },
  ];
  const onlyMaxTokens = (b) => typeof b === "object" && (!("max_tokens" in b) || b.max_tokens === 0 || b.max_tokens === "5");
  for (const b of bodies) {
    for (const path of ["/v1/messages", "/v1/messages/count_tokens"]) {
      if (path.endsWith("count_tokens") && onlyMaxTokens(b)) continue; /* max_tokens is not read there */
      const r = await raw(srv.url, "POST", path, typeof b === "string" ? b : JSON.stringify(b), auth);
      assertEq(r.status, 400, `${path} ${JSON.stringify(b)}: ${r.text}`);
      assertEq(r.json?.type, "error", `${path} ${JSON.stringify(b)}: ${r.text}`);
      assertEq(r.json?.error?.type, "invalid_request_error", r.text);
      assert(typeof r.json.error.message === "string" && r.json.error.message.length > 0, "message");
    }
  }
  let e = null;
  try { await client.messages.create({ model: "x", max_tokens: 5, messages: [{ role: "user", content: [{ type: "bogus" }] }] }); } catch (x) { e = x; }
  assert(e instanceof Anthropic.BadRequestError, `SDK error ${e}`);
  assert(/bogus/.test(e.message), e.message);
  assert(srv.alive(), "server died");
});

await srv.stop();
done();
