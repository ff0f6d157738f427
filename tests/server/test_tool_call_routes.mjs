// test_tool_call_routes.mjs — a model that calls a tool, through every route
// and its official client: chat completions (openai), Messages
// (@anthropic-ai/sdk) and Responses (openai), streamed and not.
//
// The model is scripted (server_lib.mjs makeScriptedModel): the real forward
// pass over weights that make it write, whatever the conversation,
//   <tool_call>{"name":"read_file","arguments":{"path": "main.c"}}</tool_call>
// then end its turn (Qwen2.5's Hermes syntax; the pieces are distinct tokens
// of the Qwen2 vocabulary). Checked: each route reports one call of read_file
// with arguments {"path": "main.c"} and its tool-call finish reason; the
// streamed arguments arrive in several fragments (as the tokens are
// generated) that join to the non-streamed arguments; a round trip (the
// call and its result sent back) is accepted and answered the same way; with
// tool_choice none, or no tools, the text stays content.
// A second scripted model, with Qwen3's template (reasoning in <think>),
// writes "<think>\nplan</think>Hi": reasoning comes back as Messages'
// thinking block (thinking_delta), Responses' reasoning item
// (response.reasoning_text.delta) and chat's reasoning_content.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { check, done, assert, assertEq, makeScriptedModel, startServer } from "./server_lib.mjs";

/* "<", "tool", "_call", ">{\"", "name", "\":\"", "read", "_file", "\",\"", "arguments", "\":{\"", "path",
 * "\":", " \"", "main", ".c", "\"}}", "</", "t", "ool", "_", "call", ">", <|im_end|> */
const CHAIN = [27, 14172, 13429, 88863, 606, 3252, 878, 2458, 2198, 16370, 22317, 2343, 788, 330, 3817, 520, 30975,
  522, 83, 1749, 62, 6659, 29, 151645];
const TEXT = '<tool_call>{"name":"read_file","arguments":{"path": "main.c"}}</tool_call>';
const ARGS = '{"path": "main.c"}';

const model = makeScriptedModel("toolcaller.gguf", CHAIN, 198, ["--ctx", "4096"]);
const srv = await startServer(model, ["--kv-memory", "64M"]);
const openai = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "none", maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: srv.url, apiKey: "none", maxRetries: 0 });

const schema = { type: "object", properties: { path: { type: "string" } }, required: ["path"] };
const oaiTools = [{ type: "function", function: { name: "read_file", description: "Read a file", parameters: schema } }];
const antTools = [{ name: "read_file", description: "Read a file", input_schema: schema }];
const respTools = [{ type: "function", name: "read_file", description: "Read a file", parameters: schema }];
const ask = "What is in main.c?";

await check("chat_completions_tool_call_whole_and_streamed", async () => {
  const r = await openai.chat.completions.create({ model: "x", messages: [{ role: "user", content: ask }], tools: oaiTools });
  const m = r.choices[0].message;
  assertEq(r.choices[0].finish_reason, "tool_calls");
  assertEq(m.content, null);
  assertEq(m.tool_calls.length, 1);
  assertEq(m.tool_calls[0].function.name, "read_file");
  assertEq(m.tool_calls[0].function.arguments, ARGS);
  const stream = await openai.chat.completions.create({ model: "x", messages: [{ role: "user", content: ask }], tools: oaiTools, stream: true });
  let args = "", name = null, id = null, finish = null, fragments = 0;
  for await (const chunk of stream) {
    for (const tc of chunk.choices[0]?.delta?.tool_calls || []) {
      assertEq(tc.index, 0);
      if (tc.id) { assert(id === null, "id sent twice"); id = tc.id; name = tc.function.name; }
      if (tc.function?.arguments) { args += tc.function.arguments; fragments++; }
    }
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assertEq(name, "read_file");
  assert(/^call_[A-Za-z0-9]{24}$/.test(id), `id ${id}`);
  assertEq(args, ARGS);
  assert(fragments >= 3, `the arguments came in ${fragments} fragment(s), not as they were generated`);
  assertEq(finish, "tool_calls");
  // round trip: the call and its result go back
  const r2 = await openai.chat.completions.create({ model: "x", tools: oaiTools, messages: [{ role: "user", content: ask }, m,
    { role: "tool", tool_call_id: m.tool_calls[0].id, content: "int main(void) { return 0; }" }] });
  assertEq(r2.choices[0].message.tool_calls[0].function.arguments, ARGS);
  // without tools (or with tool_choice none) it is content
  for (const extra of [{}, { tools: oaiTools, tool_choice: "none" }]) {
    const c = await openai.chat.completions.create({ model: "x", messages: [{ role: "user", content: ask }], ...extra });
    assertEq(c.choices[0].message.content, TEXT);
    assertEq(c.choices[0].finish_reason, "stop");
  }
});

await check("messages_tool_use_whole_and_streamed", async () => {
  const m = await anthropic.messages.create({ model: "x", max_tokens: 64, tools: antTools, messages: [{ role: "user", content: ask }] });
  assertEq(m.stop_reason, "tool_use");
  assertEq(m.content.length, 1);
  assertEq(m.content[0].type, "tool_use");
  assertEq(m.content[0].name, "read_file");
  assertEq(m.content[0].input, { path: "main.c" });
  const stream = await anthropic.messages.create({ model: "x", max_tokens: 64, tools: antTools, stream: true,
    messages: [{ role: "user", content: ask }] });
  let partial = "", start = null, stop = null, fragments = 0;
  for await (const ev of stream) {
    if (ev.type === "content_block_start") { assert(start === null, "one block"); start = ev.content_block; assertEq(ev.index, 0); }
    if (ev.type === "content_block_delta") { assertEq(ev.delta.type, "input_json_delta"); partial += ev.delta.partial_json; fragments++; }
    if (ev.type === "message_delta") stop = ev.delta.stop_reason;
  }
  assertEq(start.type, "tool_use");
  assertEq(start.name, "read_file");
  assertEq(start.input, {});
  assertEq(partial, ARGS);
  assert(fragments >= 3, `input_json_delta came in ${fragments} fragment(s)`);
  assertEq(stop, "tool_use");
  const final = await anthropic.messages.stream({ model: "x", max_tokens: 64, tools: antTools,
    messages: [{ role: "user", content: ask }] }).finalMessage();
  assertEq(final.content[0].input, { path: "main.c" }, "the SDK's accumulated input");
  // round trip (forcing is test_tool_choice_forced.mjs's: this model's chain does not continue an opener)
  const m2 = await anthropic.messages.create({ model: "x", max_tokens: 64, tools: antTools, tool_choice: { type: "auto" },
    messages: [{ role: "user", content: ask }, { role: "assistant", content: m.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: m.content[0].id, content: "int main(void) { return 0; }" }] }] });
  assertEq(m2.stop_reason, "tool_use");
  assertEq(m2.content[0].input, { path: "main.c" });
  const none = await anthropic.messages.create({ model: "x", max_tokens: 64, tools: antTools, tool_choice: { type: "none" },
    messages: [{ role: "user", content: ask }] });
  assertEq(none.stop_reason, "end_turn");
  assertEq(none.content, [{ type: "text", text: TEXT }]);
});

await check("responses_function_call_whole_and_streamed", async () => {
  const r = await openai.responses.create({ model: "x", input: ask, tools: respTools });
  assertEq(r.status, "completed");
  assertEq(r.output.length, 1);
  const fc = r.output[0];
  assertEq(fc.type, "function_call");
  assertEq(fc.name, "read_file");
  assertEq(fc.arguments, ARGS);
  assert(/^call_/.test(fc.call_id), fc.call_id);
  const stream = await openai.responses.create({ model: "x", input: ask, tools: respTools, stream: true });
  let deltas = "", doneArgs = null, added = null, item = null, fragments = 0;
  for await (const ev of stream) {
    if (ev.type === "response.output_item.added") added = ev.item;
    if (ev.type === "response.function_call_arguments.delta") { deltas += ev.delta; fragments++; }
    if (ev.type === "response.function_call_arguments.done") doneArgs = ev.arguments;
    if (ev.type === "response.output_item.done") item = ev.item;
  }
  assertEq(added.type, "function_call");
  assertEq(added.arguments, "");
  assertEq(deltas, ARGS);
  assert(fragments >= 3, `function_call_arguments.delta came in ${fragments} fragment(s)`);
  assertEq(doneArgs, ARGS);
  assertEq(item.arguments, ARGS);
  assertEq(item.status, "completed");
  // round trip
  const r2 = await openai.responses.create({ model: "x", tools: respTools, input: [{ role: "user", content: ask }, fc,
    { type: "function_call_output", call_id: fc.call_id, output: "int main(void) { return 0; }" }] });
  assertEq(r2.output[0].arguments, ARGS);
  const none = await openai.responses.create({ model: "x", input: ask, tools: respTools, tool_choice: "none" });
  assertEq(none.output_text, TEXT);
});

await srv.stop();

/* "<th", "ink", ">\n", "plan", "</", "think", ">", "Hi", <|im_end|> */
const THINKER = [13708, 766, 397, 10393, 522, 26865, 29, 13048, 151645];
const thinker = makeScriptedModel("thinker.gguf", THINKER, 198,
  ["--ctx", "4096", "--chat-template", `${process.env.SHARED}/templates/Qwen-Qwen3-0.6B.jinja`]);
const srv2 = await startServer(thinker, ["--kv-memory", "64M"]);
const openai2 = new OpenAI({ baseURL: srv2.url + "/v1", apiKey: "none", maxRetries: 0 });
const anthropic2 = new Anthropic({ baseURL: srv2.url, apiKey: "none", maxRetries: 0 });

await check("reasoning_as_thinking_blocks_reasoning_items_and_reasoning_content", async () => {
  const c = await openai2.chat.completions.create({ model: "x", messages: [{ role: "user", content: ask }] });
  assertEq(c.choices[0].message.content, "Hi");
  assertEq(c.choices[0].message.reasoning_content, "plan");
  const m = await anthropic2.messages.create({ model: "x", max_tokens: 64, thinking: { type: "enabled", budget_tokens: 32 },
    messages: [{ role: "user", content: ask }] });
  assertEq(m.content.map((b) => b.type), ["thinking", "text"]);
  assertEq(m.content[0].thinking, "plan");
  assertEq(m.content[1].text, "Hi");
  assertEq(m.stop_reason, "end_turn");
  const stream = await anthropic2.messages.create({ model: "x", max_tokens: 64, stream: true, messages: [{ role: "user", content: ask }] });
  const blocks = [];
  for await (const ev of stream) {
    if (ev.type === "content_block_start") blocks.push({ type: ev.content_block.type, text: "" });
    if (ev.type === "content_block_delta" && ev.delta.type === "thinking_delta") blocks.at(-1).text += ev.delta.thinking;
    if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") blocks.at(-1).text += ev.delta.text;
  }
  assertEq(blocks, [{ type: "thinking", text: "plan" }, { type: "text", text: "Hi" }]);
  const r = await openai2.responses.create({ model: "x", input: ask, reasoning: { effort: "medium" } });
  assertEq(r.output.map((i) => i.type), ["reasoning", "message"]);
  assertEq(r.output[0].content[0].text, "plan");
  assertEq(r.output_text, "Hi");
  const rs = await openai2.responses.create({ model: "x", input: ask, stream: true });
  let reasoning = "", text = "";
  for await (const ev of rs) {
    if (ev.type === "response.reasoning_text.delta") reasoning += ev.delta;
    if (ev.type === "response.output_text.delta") text += ev.delta;
  }
  assertEq([reasoning, text], ["plan", "Hi"]);
  // the reasoning goes back as an input item: accepted, and the template drops it for the last turn only
  const r2 = await openai2.responses.create({ model: "x", input: [{ role: "user", content: ask }, ...r.output, { role: "user", content: "Again?" }] });
  assertEq(r2.output_text, "Hi");
});

await srv2.stop();
done();
