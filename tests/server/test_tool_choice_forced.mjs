// test_tool_choice_forced.mjs — tool_choice that forces a call, through
// every route and its official client (openai chat completions and
// responses, @anthropic-ai/sdk messages), streamed and not.
//
// The model is scripted (server_lib.mjs makeScriptedModelChains; Qwen2.5's
// template, Hermes syntax). After the plain generation prompt ("\n") it
// answers "Hi". After a forced opener it continues the call:
//   any tool:   the prompt ends `<tool_call>\n{"name": "` and the model writes
//               read_file","arguments":{"path":"main.c"}}</tool_call>
//   read_file:  the prompt ends `<tool_call>\n{"name": "read_file", "arguments":`
//               and the model writes  {"path":"main.c"}}</tool_call>
// So without forcing the answer is the text "Hi" (finish stop / end_turn),
// and with forcing it is a call of read_file with {"path":"main.c"}: only
// the server's opener (in the prompt, and fed to the parser before the
// generated text) makes it one. Also: tool_choice none keeps the tools out
// of the prompt; a forced choice without tools, naming a missing tool or
// an unknown mode is a 400; a model whose template has no tool-call syntax
// answers a forced choice with a 400 in each protocol's error shape.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import path from "node:path";
import { SHARED, check, done, assert, assertEq, makeModel, makeScriptedModelChains, startServer, raw } from "./server_lib.mjs";

/* Qwen2 vocabulary ids */
const NL = 198, HI = 13048, IM_END = 151645;
const COLON = 788;        /* '":'  (the named opener's last token) */
const SP_QUOTE = 330;     /* ' "'  (the any-tool opener's last token) */
const TAIL = [2343, 3252, 3817, 520, 30975, 522, 14172, 13429, 29, IM_END]; /* path ":" main .c "}} </ tool _call > */
const ANY = [878, 2458, 2198, 16370, 22317, ...TAIL];  /* read _file "," arguments ":{" + TAIL */
const NAMED = [5212, ...TAIL];                         /* ' {"' + TAIL */
const ARGS = '{"path":"main.c"}';

const model = makeScriptedModelChains("forcer.gguf", [
  { start: NL, chain: [HI, IM_END] },
  { start: SP_QUOTE, chain: ANY },
  { start: COLON, chain: NAMED },
], ["--ctx", "4096"]);
const srv = await startServer(model, ["--kv-memory", "64M"]);
const openai = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "none", maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: srv.url, apiKey: "none", maxRetries: 0 });

const schema = { type: "object", properties: { path: { type: "string" } }, required: ["path"] };
const oaiTools = [{ type: "function", function: { name: "read_file", description: "Read a file", parameters: schema } },
  { type: "function", function: { name: "list_dir", description: "List a folder", parameters: { type: "object", properties: {} } } }];
const antTools = oaiTools.map((t) => ({ name: t.function.name, description: t.function.description, input_schema: t.function.parameters }));
const respTools = oaiTools.map((t) => ({ type: "function", ...t.function }));
const messages = [{ role: "user", content: "What is in main.c?" }];
const named = { type: "function", function: { name: "read_file" } };

async function chatStream(body) {
  const stream = await openai.chat.completions.create({ ...body, stream: true });
  let args = "", name = null, finish = null, content = "", fragments = 0;
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta;
    content += d?.content || "";
    for (const tc of d?.tool_calls || []) {
      assertEq(tc.index, 0);
      if (tc.function?.name) name = tc.function.name;
      if (tc.function?.arguments) { args += tc.function.arguments; fragments++; }
    }
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  return { args, name, finish, content, fragments };
}

await check("chat_completions_auto_is_text_required_and_named_are_calls", async () => {
  const auto = await openai.chat.completions.create({ model: "x", messages, tools: oaiTools });
  assertEq(auto.choices[0].message.content, "Hi");
  assertEq(auto.choices[0].finish_reason, "stop");
  for (const tool_choice of ["required", named]) {
    const r = await openai.chat.completions.create({ model: "x", messages, tools: oaiTools, tool_choice });
    const m = r.choices[0].message;
    assertEq(r.choices[0].finish_reason, "tool_calls", `finish (${JSON.stringify(tool_choice)})`);
    assertEq(m.content, null);
    assertEq(m.tool_calls.length, 1);
    assertEq(m.tool_calls[0].function.name, "read_file");
    assertEq(m.tool_calls[0].function.arguments, ARGS);
    assert(r.usage.prompt_tokens > auto.usage.prompt_tokens, "the opener is part of the prompt");
    const s = await chatStream({ model: "x", messages, tools: oaiTools, tool_choice });
    assertEq(s.name, "read_file");
    assertEq(s.args, ARGS);
    assertEq(s.finish, "tool_calls");
    assertEq(s.content, "");
    assert(s.fragments >= 2, `arguments in ${s.fragments} fragment(s)`);
  }
  const s = await chatStream({ model: "x", messages, tools: oaiTools });
  assertEq(s.content, "Hi");
  assertEq(s.finish, "stop");
});

await check("messages_any_and_tool_force_tool_use", async () => {
  const auto = await anthropic.messages.create({ model: "x", max_tokens: 64, tools: antTools, messages });
  assertEq(auto.stop_reason, "end_turn");
  assertEq(auto.content, [{ type: "text", text: "Hi" }]);
  for (const tool_choice of [{ type: "any" }, { type: "tool", name: "read_file" }]) {
    const m = await anthropic.messages.create({ model: "x", max_tokens: 64, tools: antTools, tool_choice, messages });
    assertEq(m.stop_reason, "tool_use", `stop_reason (${JSON.stringify(tool_choice)})`);
    assertEq(m.content.length, 1);
    assertEq(m.content[0].type, "tool_use");
    assertEq(m.content[0].name, "read_file");
    assertEq(m.content[0].input, { path: "main.c" });
    const stream = await anthropic.messages.create({ model: "x", max_tokens: 64, tools: antTools, tool_choice, messages, stream: true });
    let json = "", start = null, stop = null;
    for await (const ev of stream) {
      if (ev.type === "content_block_start") { assert(start === null, "one block"); start = ev.content_block; }
      if (ev.type === "content_block_delta") { assertEq(ev.delta.type, "input_json_delta"); json += ev.delta.partial_json; }
      if (ev.type === "message_delta") stop = ev.delta.stop_reason;
    }
    assertEq(start.type, "tool_use");
    assertEq(start.name, "read_file");
    assertEq(JSON.parse(json), { path: "main.c" });
    assertEq(stop, "tool_use");
    const final = await anthropic.messages.stream({ model: "x", max_tokens: 64, tools: antTools, tool_choice, messages }).finalMessage();
    assertEq(final.content[0].input, { path: "main.c" }, "the SDK's accumulated input");
    // count_tokens counts the prompt the request runs, opener included
    const counted = await anthropic.messages.countTokens({ model: "x", tools: antTools, tool_choice, messages });
    assertEq(counted.input_tokens, m.usage.input_tokens + m.usage.cache_read_input_tokens);
  }
});

await check("responses_required_and_function_force_function_call", async () => {
  const auto = await openai.responses.create({ model: "x", input: "What is in main.c?", tools: respTools });
  assertEq(auto.output_text, "Hi");
  for (const tool_choice of ["required", { type: "function", name: "read_file" }]) {
    const r = await openai.responses.create({ model: "x", input: "What is in main.c?", tools: respTools, tool_choice });
    const calls = r.output.filter((o) => o.type === "function_call");
    assertEq(calls.length, 1, `function_call items (${JSON.stringify(tool_choice)})`);
    assertEq(calls[0].name, "read_file");
    assertEq(calls[0].arguments, ARGS);
    assertEq(r.output_text, "");
    const stream = await openai.responses.create({ model: "x", input: "What is in main.c?", tools: respTools, tool_choice, stream: true });
    let args = "", done = null, completed = null;
    for await (const ev of stream) {
      if (ev.type === "response.function_call_arguments.delta") args += ev.delta;
      if (ev.type === "response.function_call_arguments.done") done = ev.arguments;
      if (ev.type === "response.completed") completed = ev.response;
    }
    assertEq(args, ARGS);
    assertEq(done, ARGS);
    assertEq(completed.output.filter((o) => o.type === "function_call")[0].arguments, ARGS);
  }
});

await check("tool_choice_none_keeps_the_tools_out_of_the_prompt", async () => {
  const withTools = await openai.chat.completions.create({ model: "x", messages, tools: oaiTools, max_tokens: 1 });
  const none = await openai.chat.completions.create({ model: "x", messages, tools: oaiTools, tool_choice: "none", max_tokens: 1 });
  const noTools = await openai.chat.completions.create({ model: "x", messages, max_tokens: 1 });
  assertEq(none.usage.prompt_tokens, noTools.usage.prompt_tokens);
  assert(withTools.usage.prompt_tokens > none.usage.prompt_tokens + 50, "the tools' descriptions are in the auto prompt");
  const m = await anthropic.messages.countTokens({ model: "x", tools: antTools, tool_choice: { type: "none" }, messages });
  assertEq(m.input_tokens, noTools.usage.prompt_tokens);
});

await check("bad_tool_choices_are_400", async () => {
  const bad = [
    { messages, tool_choice: "required" },                                   // no tools
    { messages, tools: oaiTools, tool_choice: "sometimes" },
    { messages, tools: oaiTools, tool_choice: { type: "function", function: { name: "missing" } } },
    { messages, tools: oaiTools, tool_choice: { type: "function" } },
    { messages, tools: [{ type: "function", function: { name: "read file", parameters: schema } }],
      tool_choice: { type: "function", function: { name: "read file" } } },  // a name the opener cannot hold
  ];
  for (const body of bad) {
    const r = await raw(srv.url, "POST", "/v1/chat/completions", JSON.stringify({ model: "x", ...body }));
    assertEq(r.status, 400, `${JSON.stringify(body.tool_choice)}: ${r.text}`);
    assert(/tool/.test(r.json.error.message), r.json.error.message);
  }
  let e = null;
  try { await anthropic.messages.create({ model: "x", max_tokens: 8, messages, tool_choice: { type: "any" } }); } catch (x) { e = x; }
  assert(e instanceof Anthropic.BadRequestError, `any without tools: ${e}`);
  assertEq(e.error?.error?.type, "invalid_request_error");
});

await srv.stop();

// A template without a tool-call syntax larder knows (Gemma 2): forcing is refused, auto still runs.
const plain = makeModel("forcer-gemma2.gguf", ["--ctx", "2048", "--chat-template", path.join(SHARED, "templates/google-gemma-2-2b-it.jinja")]);
const srv2 = await startServer(plain, ["--kv-memory", "32M"]);
await check("unforceable_template_answers_400_in_each_protocol", async () => {
  const oa = new OpenAI({ baseURL: srv2.url + "/v1", apiKey: "none", maxRetries: 0 });
  const an = new Anthropic({ baseURL: srv2.url, apiKey: "none", maxRetries: 0 });
  const errs = [];
  for (const call of [
    () => oa.chat.completions.create({ model: "x", messages, tools: oaiTools, tool_choice: "required", max_tokens: 2 }),
    () => oa.chat.completions.create({ model: "x", messages, tools: oaiTools, tool_choice: named, max_tokens: 2 }),
    () => oa.responses.create({ model: "x", input: "hi", tools: respTools, tool_choice: "required", max_output_tokens: 2 }),
    () => an.messages.create({ model: "x", max_tokens: 2, messages, tools: antTools, tool_choice: { type: "any" } }),
  ]) {
    let e = null;
    try { await call(); } catch (x) { e = x; }
    assert(e && e.status === 400, `expected a 400, got ${e}`);
    assert(/cannot be forced/.test(e.message), e.message);
    errs.push(e);
  }
  assert(errs[3] instanceof Anthropic.BadRequestError && errs[3].error.type === "error", "Anthropic's error shape");
  const ok = await oa.chat.completions.create({ model: "x", messages, tools: oaiTools, max_tokens: 2 });
  assertEq(ok.choices.length, 1);
});
await srv2.stop();
done();
