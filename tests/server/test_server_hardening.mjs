// test_server_hardening.mjs — `larder serve` against hostile requests, end to
// end (the HTTP layer's own cases are in test_http_hardening.c):
//   - 8 keyless 15 MB uploads are answered 401 from the headers: the server's
//     resident memory does not grow by the bodies (it was +121 MB);
//   - /metrics counts 401, 404, 405, 413 and 415;
//   - --api-key-file (and the key through x-api-key, the Anthropic header);
//   - a DNS-rebinding Host is 403; text/plain is 415;
//   - JSON with "\u0000" or a key twice is 400; chat_template_kwargs may not
//     replace messages; n over --max-n is 400;
//   - control-token text typed in content is text (more prompt tokens than
//     one control token would be), and --parse-special-in-content restores
//     the old parse;
//   - a 2 MB prompt over a 2,048-token context is refused quickly.
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { check, done, assert, assertEq, makeModel, startServer, raw, TMP } from "./server_lib.mjs";

const model = makeModel("chat.gguf");
const keyFile = path.join(TMP, "api.key");
fs.writeFileSync(keyFile, "s3cret-key\n", { mode: 0o600 });
const srv = await startServer(model, ["--kv-memory", "32M", "--parallel", "2", "--api-key-file", keyFile,
  "--max-n", "2", "--max-body", "1M"]);
const auth = { Authorization: "Bearer s3cret-key" };

function rssKb(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : -1;
}

// Raw request: sends head (and optional body), resolves to the whole answer text.
function rawHttp(port, text, { body = null, keepSending = 0 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let got = "";
    let sent = 0;
    const chunk = Buffer.alloc(1 << 16, 120);
    sock.on("connect", () => {
      sock.write(text);
      if (body) sock.write(body);
      const pump = () => {
        while (sent < keepSending && !sock.destroyed) {
          sent += chunk.length;
          if (!sock.write(chunk)) return sock.once("drain", pump);
        }
      };
      if (keepSending) pump();
    });
    sock.on("data", (d) => { got += d.toString(); });
    sock.on("error", () => {});
    sock.on("close", () => resolve(got));
    setTimeout(() => sock.destroy(), 10000);
  });
}

await check("keyless_big_uploads_are_refused_from_the_headers", async () => {
  const before = rssKb(srv.proc.pid);
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${15 << 20}\r\n\r\n`;
  const answers = await Promise.all(Array.from({ length: 8 }, () => rawHttp(srv.port, head, { keepSending: 15 << 20 })));
  for (const a of answers) assert(a.startsWith("HTTP/1.1 401"), `want 401, got ${JSON.stringify(a.slice(0, 80))}`);
  const grew = rssKb(srv.proc.pid) - before;
  assert(grew < 24 * 1024, `resident memory grew by ${grew} kB for 8 refused uploads`);
});

await check("key_from_file_bearer_any_case_and_x_api_key", async () => {
  let r = await raw(srv.url, "GET", "/v1/models", undefined, { Authorization: "bearer s3cret-key" });
  assertEq(r.status, 200);
  r = await raw(srv.url, "GET", "/v1/models", undefined, { "x-api-key": "s3cret-key" });
  assertEq(r.status, 200);
  r = await raw(srv.url, "GET", "/v1/models", undefined, { Authorization: "Bearer s3cret-key-not" });
  assertEq(r.status, 401);
  assert(!/s3cret/.test(fs.readFileSync(`/proc/${srv.proc.pid}/cmdline`, "utf8")), "the key shows in the command line");
});

await check("browser_attacks_host_and_content_type", async () => {
  const evil = await rawHttp(srv.port, "GET /health HTTP/1.1\r\nHost: attacker.example:8080\r\nConnection: close\r\n\r\n");
  assert(evil.startsWith("HTTP/1.1 403"), evil.slice(0, 60));
  const body = JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 1 });
  const r = await fetch(srv.url + "/v1/chat/completions", { method: "POST", body,
    headers: { "Content-Type": "text/plain", ...auth } });
  assertEq(r.status, 415);
  await r.text();
});

await check("ambiguous_json_and_reserved_kwargs_are_400", async () => {
  const cases = [
    '{"messages":[{"role":"user\\u0000x","content":"hi"}],"max_tokens":1}',
    '{"messages":[{"role":"user","content":"hi"}],"max_tokens":null,"max_tokens":1e999}',
    '{"messages":[{"role":"user","content":"hi"}],"max_tokens":1,"chat_template_kwargs":{"messages":[]}}',
    '{"messages":[{"role":"user","content":"hi"}],"max_tokens":1,"n":3}',
  ];
  for (const c of cases) {
    const r = await raw(srv.url, "POST", "/v1/chat/completions", c, auth);
    assertEq(r.status, 400, c);
    assert(r.json && r.json.error && r.json.error.message, "error object");
  }
});

async function promptTokens(url, content, headers) {
  const r = await raw(url, "POST", "/v1/chat/completions",
    JSON.stringify({ messages: [{ role: "user", content }], max_tokens: 1, temperature: 0 }), headers);
  assertEq(r.status, 200, r.text);
  return r.json.usage.prompt_tokens;
}

await check("control_token_text_in_content_is_text", async () => {
  const base = await promptTokens(srv.url, "ab", auth);
  const typed = await promptTokens(srv.url, "a<|im_start|>b", auth);
  // as text, "<|im_start|>" takes several tokens; as a control token it would take one
  assert(typed - base >= 4, `prompt grew by ${typed - base} tokens only`);
  const old = await startServer(model, ["--kv-memory", "16M", "--parallel", "1", "--parse-special-in-content"]);
  try {
    const oldTyped = await promptTokens(old.url, "a<|im_start|>b", {});
    const oldBase = await promptTokens(old.url, "ab", {});
    assertEq(oldBase, base, "plain content: same prompt either way");
    // parsed, the typed text is one control token between "a" and "b"
    assert(typed - oldTyped >= 3, `as text ${typed} tokens, parsed ${oldTyped}`);
    assert(oldTyped - oldBase <= 2, `parsed: ${oldTyped - oldBase} more tokens than "ab"`);
  } finally {
    await old.stop();
  }
});

await check("huge_prompt_is_refused_quickly", async () => {
  const prompt = "lorem ipsum dolor sit amet ".repeat(80000); // ~2.1 MB, far over 2,048 tokens
  const t0 = Date.now();
  const r = await raw(srv.url, "POST", "/v1/completions", JSON.stringify({ prompt, max_tokens: 1 }), auth);
  const ms = Date.now() - t0;
  assert(r.status === 400 || r.status === 413, `status ${r.status}`);
  if (r.status === 400) assert(/context/.test(r.json.error.message), r.json.error.message);
  assert(ms < 5000, `took ${ms} ms`);
});

await check("metrics_count_every_status", async () => {
  await raw(srv.url, "GET", "/nope", undefined, auth);
  await raw(srv.url, "PUT", "/v1/models", undefined, auth);
  await raw(srv.url, "POST", "/v1/completions", "x".repeat(2 << 20), auth); // over --max-body 1M
  const m = await (await fetch(srv.url + "/metrics", { headers: auth })).text();
  const count = (s) => Number((m.match(new RegExp(`larder_requests_total\\{status="${s}"\\} (\\d+)`)) || [])[1] || 0);
  for (const s of [401, 404, 405, 413, 415, 403, 400, 200]) assert(count(s) > 0, `status ${s} not counted:\n${m.slice(0, 800)}`);
});

await srv.stop();
done();
