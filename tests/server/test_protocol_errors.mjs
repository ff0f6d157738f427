// test_protocol_errors.mjs — the errors the server answers before (or
// instead of) a route's work come in the protocol's shape: on /v1/messages
// and /v1/messages/count_tokens Anthropic's
//   {"type":"error","error":{"type":"authentication_error"|"not_found_error"|
//     "request_too_large"|"rate_limit_error"|"overloaded_error"|"invalid_request_error", "message":…}}
// and on /v1/responses OpenAI's {"error":{"message","type","param","code"}}.
// Each status is checked with raw HTTP (status, body shape, type) and with
// the official SDK (@anthropic-ai/sdk, openai): the SDK's error class and its
// status and type. Cases: 401 (no key, wrong key), 404 (a path under the
// route), 405 (another method), 413 (body past --max-body), 415, 400
// (malformed JSON, an invalid field), 503 (the queue is full: --parallel 1
// --max-queue 0 while a generation runs) and 429 (the address locked out
// after wrong keys; last, as it locks the test's address out).
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { check, done, assert, assertEq, makeScriptedModelChains, startServer, raw } from "./server_lib.mjs";

/* Qwen2 vocabulary: "\n" -> "Hi" -> "\n" -> ...: the model never ends its turn (the 503 case). */
const NL = 198, HI = 13048;
const model = makeScriptedModelChains("looper.gguf", [{ start: NL, chain: [HI] }, { start: HI, chain: [NL] }], ["--ctx", "32768"]);
const srv = await startServer(model, ["--kv-memory", "64M", "--api-key", "sekret", "--max-body", "64K",
  "--parallel", "1", "--max-queue", "0"]);
const KEY = { "x-api-key": "sekret" };
const anthropic = new Anthropic({ baseURL: srv.url, apiKey: "sekret", maxRetries: 0 });
const openai = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "sekret", maxRetries: 0 });
const msg = { model: "x", max_tokens: 4, messages: [{ role: "user", content: "hi" }] };
const resp = { model: "x", max_output_tokens: 4, input: "hi" };

function anthropicShape(r, status, type) {
  assertEq(r.status, status, `status: ${r.text}`);
  assert(r.json, `not JSON: ${r.text}`);
  assertEq(r.json.type, "error", `shape: ${r.text}`);
  assertEq(r.json.error.type, type, `type: ${r.text}`);
  assert(typeof r.json.error.message === "string" && r.json.error.message.length > 0, "message");
}
function openaiShape(r, status, type) {
  assertEq(r.status, status, `status: ${r.text}`);
  assert(r.json && r.json.error, `shape: ${r.text}`);
  assertEq(r.json.type, undefined, "no Anthropic type");
  assertEq(r.json.error.type, type, `type: ${r.text}`);
  assert(typeof r.json.error.message === "string" && r.json.error.message.length > 0, "message");
}
async function sdkError(fn) {
  try { await fn(); } catch (e) { return e; }
  throw new Error("the call succeeded");
}
function anthropicSdk(e, cls, status, type) {
  assert(e instanceof cls, `${e?.constructor?.name}: ${e}`);
  assertEq(e.status, status);
  assertEq(e.error?.type, "error", `body ${JSON.stringify(e.error)}`);
  assertEq(e.error?.error?.type, type);
}
function openaiSdk(e, cls, status, type) {
  assert(e instanceof cls, `${e?.constructor?.name}: ${e}`);
  assertEq(e.status, status);
  assertEq(e.type, type);
}

await check("401_missing_or_wrong_key", async () => {
  for (const p of ["/v1/messages", "/v1/messages/count_tokens"])
    anthropicShape(await raw(srv.url, "POST", p, JSON.stringify(msg)), 401, "authentication_error");
  openaiShape(await raw(srv.url, "POST", "/v1/responses", JSON.stringify(resp)), 401, "authentication_error");
  const bad = new Anthropic({ baseURL: srv.url, apiKey: "wrong", maxRetries: 0 });
  anthropicSdk(await sdkError(() => bad.messages.create(msg)), Anthropic.AuthenticationError, 401, "authentication_error");
  const badOai = new OpenAI({ baseURL: srv.url + "/v1", apiKey: "wrong", maxRetries: 0 });
  openaiSdk(await sdkError(() => badOai.responses.create(resp)), OpenAI.AuthenticationError, 401, "authentication_error");
});

await check("404_and_405", async () => {
  anthropicShape(await raw(srv.url, "POST", "/v1/messages/batches", JSON.stringify(msg), KEY), 404, "not_found_error");
  anthropicShape(await raw(srv.url, "GET", "/v1/messages", undefined, KEY), 405, "invalid_request_error");
  anthropicShape(await raw(srv.url, "GET", "/v1/messages/count_tokens", undefined, KEY), 405, "invalid_request_error");
  openaiShape(await raw(srv.url, "POST", "/v1/responses/resp_1/cancel", "{}", KEY), 404, "not_found_error");
  openaiShape(await raw(srv.url, "GET", "/v1/responses", undefined, KEY), 405, "invalid_request_error");
  // a path that merely starts like the route's is not the route's
  openaiShape(await raw(srv.url, "POST", "/v1/messagesx", "{}", KEY), 404, "not_found_error");
  anthropicSdk(await sdkError(() => anthropic.messages.batches.list()), Anthropic.NotFoundError, 404, "not_found_error");
  anthropicSdk(await sdkError(() => anthropic.get("/v1/messages")), Anthropic.APIError, 405, "invalid_request_error");
  openaiSdk(await sdkError(() => openai.responses.retrieve("resp_1")), OpenAI.NotFoundError, 404, "not_found_error");
});

await check("413_body_too_large", async () => {
  const big = { ...msg, messages: [{ role: "user", content: "x".repeat(100 * 1024) }] };
  anthropicShape(await raw(srv.url, "POST", "/v1/messages", JSON.stringify(big), KEY), 413, "request_too_large");
  anthropicShape(await raw(srv.url, "POST", "/v1/messages/count_tokens", JSON.stringify(big), KEY), 413, "request_too_large");
  openaiShape(await raw(srv.url, "POST", "/v1/responses", JSON.stringify({ ...resp, input: "x".repeat(100 * 1024) }), KEY),
    413, "request_too_large");
  anthropicSdk(await sdkError(() => anthropic.messages.create(big)), Anthropic.APIError, 413, "request_too_large");
  openaiSdk(await sdkError(() => openai.responses.create({ ...resp, input: "x".repeat(100 * 1024) })), OpenAI.APIError, 413,
    "request_too_large");
});

await check("400_malformed_json_invalid_fields_and_415", async () => {
  for (const body of ["{", "[1]", "{\"model\": \"x\", \"model\": \"y\"}", "\"x\""]) {
    anthropicShape(await raw(srv.url, "POST", "/v1/messages", body, KEY), 400, "invalid_request_error");
    anthropicShape(await raw(srv.url, "POST", "/v1/messages/count_tokens", body, KEY), 400, "invalid_request_error");
    openaiShape(await raw(srv.url, "POST", "/v1/responses", body, KEY), 400, "invalid_request_error");
  }
  anthropicShape(await raw(srv.url, "POST", "/v1/messages", JSON.stringify(msg), { ...KEY, "Content-Type": "text/plain" }),
    415, "invalid_request_error");
  anthropicSdk(await sdkError(() => anthropic.messages.create({ ...msg, max_tokens: 0 })), Anthropic.BadRequestError, 400,
    "invalid_request_error");
  openaiSdk(await sdkError(() => openai.responses.create({ ...resp, previous_response_id: "resp_1" })), OpenAI.BadRequestError,
    400, "invalid_request_error");
});

await check("503_overloaded_while_the_one_slot_runs", async () => {
  // the looping model holds the only slot until this stream is dropped
  const ctl = new AbortController();
  const stream = await anthropic.messages.create({ ...msg, max_tokens: 30000, stream: true }, { signal: ctl.signal });
  const it = stream[Symbol.asyncIterator]();
  let deltas = 0;
  while (deltas < 3) {
    const { value, done: end } = await it.next();
    assert(!end, "the looping generation ended");
    if (value.type === "content_block_delta") deltas++;
  }
  try {
    const r = await raw(srv.url, "POST", "/v1/messages", JSON.stringify(msg), KEY);
    anthropicShape(r, 503, "overloaded_error");
    assert(r.headers.get("retry-after"), "Retry-After");
    openaiShape(await raw(srv.url, "POST", "/v1/responses", JSON.stringify(resp), KEY), 503, "server_overloaded");
    anthropicSdk(await sdkError(() => anthropic.messages.create(msg)), Anthropic.InternalServerError, 503, "overloaded_error");
    openaiSdk(await sdkError(() => openai.responses.create(resp)), OpenAI.InternalServerError, 503, "server_overloaded");
  } finally {
    ctl.abort();
  }
  // the slot comes back
  for (let i = 0; ; i++) {
    const r = await raw(srv.url, "POST", "/v1/messages", JSON.stringify(msg), KEY);
    if (r.status === 200) break;
    assert(i < 100, `the slot did not come back: ${r.status}`);
    await new Promise((res) => setTimeout(res, 50));
  }
});

await check("429_after_wrong_keys", async () => {
  let r;
  for (let i = 0; i < 10; i++) {
    r = await raw(srv.url, "POST", "/v1/messages", JSON.stringify(msg), { "x-api-key": `guess${i}` });
    if (r.status === 429) break;
    anthropicShape(r, 401, "authentication_error");
  }
  anthropicShape(r, 429, "rate_limit_error");
  assert(r.headers.get("retry-after"), "Retry-After");
  openaiShape(await raw(srv.url, "POST", "/v1/responses", JSON.stringify(resp), { Authorization: "Bearer guess" }), 429,
    "invalid_request_error");
  anthropicSdk(await sdkError(() => anthropic.messages.create(msg)), Anthropic.RateLimitError, 429, "rate_limit_error");
  openaiSdk(await sdkError(() => openai.responses.create(resp)), OpenAI.RateLimitError, 429, "invalid_request_error");
});

await srv.stop();
done();
