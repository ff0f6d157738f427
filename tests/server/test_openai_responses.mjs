// test_openai_responses.mjs — POST /v1/responses through the official openai
// npm client's responses API and raw HTTP.
//
// The oracle is larder's own chat route: a Responses request and the
// equivalent /v1/chat/completions request render the same prompt, so at
// temperature 0 they report the same prompt size and the same text. Also:
// the response object's shape, the streamed event sequence (created,
// in_progress, output_item.added, content_part.added, output_text.delta,
// output_text.done, content_part.done, output_item.done, completed or
// incomplete, with increasing sequence_number) equal to the whole response,
// function_call / function_call_output / reasoning items in the input,
// cached tokens on turn 2, stateless answers to previous_response_id, and a
// 400 in OpenAI's error shape for every malformed body.
import OpenAI from "openai";
import { check, done, assert, assertEq, makeModel, startServer, raw } from "./server_lib.mjs";

const model = makeModel("responses.gguf", ["--ctx", "4096"]);
const srv = await startServer(model, ["--kv-memory", "64M"]);
const client = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "none", maxRetries: 0 });

const INSTRUCTIONS = Array.from({ length: 60 }, (_, i) => `Rule ${i}: answer questions about caches carefully and briefly.`).join("\n");
const question = "What does a prefix cache keep? 日本語 \"quotes\" <b>&</b>";

let whole;
await check("response_shape_and_same_answer_as_chat_completions", async () => {
  const r = await client.responses.create({ model: "gpt-x", instructions: INSTRUCTIONS, input: question,
    max_output_tokens: 12, temperature: 0, store: false });
  assert(r.id.startsWith("resp_"), r.id);
  assertEq(r.object, "response");
  assertEq(r.model, "gpt-x");
  assert(["completed", "incomplete"].includes(r.status), r.status);
  if (r.status === "incomplete") assertEq(r.incomplete_details.reason, "max_output_tokens");
  assertEq(r.instructions, INSTRUCTIONS);
  assertEq(r.output.length, 1);
  assertEq(r.output[0].type, "message");
  assertEq(r.output[0].role, "assistant");
  assertEq(r.output[0].content[0].type, "output_text");
  assertEq(r.output_text, r.output[0].content[0].text, "the SDK's output_text");
  assert(r.usage.output_tokens > 0 && r.usage.output_tokens <= 12, "output_tokens");
  assertEq(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
  assert(Number.isInteger(r.usage.input_tokens_details.cached_tokens), "cached_tokens");
  const c = await client.chat.completions.create({ model: "x", max_tokens: 12, temperature: 0,
    messages: [{ role: "system", content: INSTRUCTIONS }, { role: "user", content: question }] });
  assertEq(r.usage.input_tokens, c.usage.prompt_tokens, "prompt size differs from the chat route's");
  assertEq(r.output_text, c.choices[0].message.content, "greedy text differs from the chat route's");
  assertEq(r.status === "incomplete", c.choices[0].finish_reason === "length");
  whole = r;
});

await check("streamed_events_in_order_and_equal_to_whole", async () => {
  const stream = await client.responses.create({ model: "gpt-x", instructions: INSTRUCTIONS, input: question,
    max_output_tokens: 12, temperature: 0, stream: true });
  const types = [];
  let seq = -1, text = "", last = null;
  for await (const ev of stream) {
    types.push(ev.type);
    assertEq(ev.sequence_number, seq + 1, "sequence_number");
    seq = ev.sequence_number;
    if (ev.type === "response.output_text.delta") { assertEq(ev.output_index, 0); text += ev.delta; }
    if (ev.type === "response.output_text.done") assertEq(ev.text, text);
    if (ev.type === "response.completed" || ev.type === "response.incomplete") last = ev.response;
  }
  const want = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"];
  assertEq(types.slice(0, 4), want);
  assertEq(types.slice(-4), ["response.output_text.done", "response.content_part.done", "response.output_item.done",
    whole.status === "completed" ? "response.completed" : "response.incomplete"]);
  assertEq(text, whole.output_text);
  assertEq(last.output[0].content[0].text, whole.output_text);
  assertEq(last.usage.output_tokens, whole.usage.output_tokens);
  assertEq(last.usage.input_tokens, whole.usage.input_tokens);
});

await check("input_items_render_as_the_chat_route_does", async () => {
  const tools = [{ type: "function", name: "read_file", description: "Read a file", strict: false,
    parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } },
  { type: "web_search" }, { type: "namespace", name: "ns", description: "d", tools: [] }];
  const input = [
    { role: "developer", content: "Be terse." },
    { type: "message", role: "user", content: [{ type: "input_text", text: "Read main.c" }] },
    { type: "reasoning", id: "rs_1", summary: [{ type: "summary_text", text: "Need the file." }], encrypted_content: null },
    { type: "function_call", call_id: "call_1", name: "read_file", arguments: "{\"path\":\"main.c\"}" },
    { type: "function_call", call_id: "call_2", name: "read_file", arguments: "{\"path\":\"x.c\"}" },
    { type: "function_call_output", call_id: "call_1", output: "int main(void) {}" },
    { type: "function_call_output", call_id: "call_2", output: [{ type: "input_text", text: "no such file" }] },
    { type: "message", role: "assistant", content: [{ type: "output_text", text: "Read both." }] },
    { role: "user", content: "So?" },
  ];
  const messages = [
    { role: "system", content: "Be terse." },
    { role: "user", content: "Read main.c" },
    { role: "assistant", content: "", reasoning_content: "Need the file.", tool_calls: [
      { id: "call_1", type: "function", function: { name: "read_file", arguments: "{\"path\":\"main.c\"}" } },
      { id: "call_2", type: "function", function: { name: "read_file", arguments: "{\"path\":\"x.c\"}" } }] },
    { role: "tool", tool_call_id: "call_1", content: "int main(void) {}" },
    { role: "tool", tool_call_id: "call_2", content: "no such file" },
    { role: "assistant", content: "Read both." },
    { role: "user", content: "So?" },
  ];
  const oaiTools = [{ type: "function", function: { name: "read_file", description: "Read a file", parameters: tools[0].parameters } }];
  for (const tool_choice of [undefined, "auto", "required", "none", { type: "function", name: "read_file" }]) {
    const r = await client.responses.create({ model: "x", input, tools, tool_choice, max_output_tokens: 8, temperature: 0,
      parallel_tool_calls: true, reasoning: { summary: "auto" }, include: ["reasoning.encrypted_content"], store: false,
      prompt_cache_key: "k" });
    const chatChoice = tool_choice?.type === "function" ? { type: "function", function: { name: tool_choice.name } } : tool_choice;
    const c = await client.chat.completions.create({ model: "x", messages, tools: oaiTools, max_tokens: 8, temperature: 0,
      tool_choice: chatChoice });
    assertEq(r.usage.input_tokens, c.usage.prompt_tokens, `prompt size (tool_choice ${JSON.stringify(tool_choice)})`);
    assertEq(r.output_text, c.choices[0].message.content ?? "", "greedy text");
  }
});

await check("turn_2_hits_the_cache", async () => {
  const t1 = [{ role: "user", content: question }];
  const r1 = await client.responses.create({ model: "x", instructions: INSTRUCTIONS, input: t1, max_output_tokens: 16, temperature: 0 });
  const t2 = [...t1, ...r1.output, { role: "user", content: "And then?" }];
  const stream = await client.responses.create({ model: "x", instructions: INSTRUCTIONS, input: t2, max_output_tokens: 4,
    temperature: 0, stream: true });
  let usage = null;
  for await (const ev of stream) if (ev.response?.usage) usage = ev.response.usage;
  const ratio = usage.input_tokens_details.cached_tokens / usage.input_tokens;
  console.log(`# turn 2: ${usage.input_tokens_details.cached_tokens} of ${usage.input_tokens} input tokens cached (${(100 * ratio).toFixed(1)}%)`);
  assert(usage.input_tokens > r1.usage.input_tokens, "turn 2 does not extend turn 1");
  assert(ratio >= 0.95, `turn 2 only ${(100 * ratio).toFixed(1)}% cached`);
});

await check("malformed_bodies_get_400_in_openai_shape", async () => {
  const bodies = [
    "not json", "[1]", "{\"input\":", "{}",
    { input: 5 }, { input: [] }, { input: [5] }, { input: [{ type: "mystery" }] },
    { input: [{ role: "robot", content: "x" }] },
    { input: [{ role: "user", content: 5 }] },
    { input: [{ role: "user", content: [{ type: "input_image", image_url: "http://x" }] }] },
    { input: [{ role: "user", content: [{ type: "input_text" }] }] },
    { input: [{ type: "function_call", name: "f", arguments: "{}" }] },
    { input: [{ type: "function_call", call_id: "c", name: "f", arguments: {} }] },
    { input: [{ type: "function_call_output", output: "x" }] },
    { input: [{ type: "function_call_output", call_id: "c", output: 5 }] },
    { input: [{ type: "reasoning", summary: "x" }] },
    { input: [{ type: "item_reference", id: "msg_1" }] },
    { input: "x", previous_response_id: "resp_1" },
    { input: "x", background: true },
    { input: "x", instructions: 5 },
    { input: "x", tools: {} },
    { input: "x", tools: [{ name: "f" }] },
    { input: "x", tools: [{ type: "function" }] },
    { input: "x", tools: [{ type: "function", name: "f", parameters: "x" }] },
    { input: "x", tool_choice: "sometimes" },
    { input: "x", tool_choice: { type: "function", name: "missing" } },
    { input: "x", max_output_tokens: -1 },
    { input: "x", max_output_tokens: "5" },
    { input: "x", temperature: "hot" },
    { input: "x", top_p: 2 },
    { input: "x", stream: "yes" },
    { input: "x", store: "no" },
    { input: "x", reasoning: "high" },
    { input: "x", reasoning: { effort: 5 } },
    { input: "x", text: { format: { type: "json_schema", schema: {} } } },
    { input: "x", metadata: 5 },
    { input: "x", parallel_tool_calls: "yes" },
  ];
  for (const b of bodies) {
    const r = await raw(srv.url, "POST", "/v1/responses", typeof b === "string" ? b : JSON.stringify(b));
    assertEq(r.status, 400, `${JSON.stringify(b)}: ${r.text}`);
    assertEq(r.json?.error?.type, "invalid_request_error", r.text);
    assert(typeof r.json.error.message === "string" && r.json.error.message.length > 0, "message");
  }
  let e = null;
  try { await client.responses.create({ model: "x", input: "x", previous_response_id: "resp_123" }); } catch (x) { e = x; }
  assert(e instanceof OpenAI.BadRequestError, `SDK error ${e}`);
  assert(/previous_response_id/.test(e.message), e.message);
  assert(srv.alive(), "server died");
});

await srv.stop();
done();
