// test_kv_options.mjs — the KV pool's options through the server:
//  * --kv-type f32|bf16|q8_0|q4_0: a follow-up turn served from the cache
//    (pages shared, the partial page copied) answers exactly as a cache-off
//    server of the same type; a type the pool cannot store for the model's
//    head size is refused at start with a message;
//  * --max-kv-size N --keep K: a sequence far longer than N completes inside
//    a pool that could not hold it whole, identically with the cache on and
//    off, and the pool's running bytes never exceed its budget; --keep >= N is
//    refused at start.
import { spawnSync } from "node:child_process";
import { LARDER, check, done, assert, assertEq, makeModel, startServer } from "./server_lib.mjs";

// head size 64 (dim 128, 2 heads): a multiple of the q8_0/q4_0 block and of
// the 64-element rotation those types use.
const model = makeModel("kv64.gguf", ["--dim", "128", "--heads", "2", "--kv-heads", "1", "--ff", "256"]);
// head size 16: too small for q8_0/q4_0 blocks.
const model16 = makeModel("kv16.gguf");

async function complete(url, prompt, maxTokens) {
  const r = await fetch(`${url}/v1/completions`, {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true})});
  const j = await r.json();
  if (r.status !== 200) throw new Error(`status ${r.status}: ${JSON.stringify(j)}`);
  return {text: j.choices[0].text, cached: j.usage.prompt_tokens_details.cached_tokens, prompt: j.usage.prompt_tokens};
}

const turn1 = "The quick brown fox jumps over the lazy dog. ".repeat(12);
async function twoTurns(url) {
  const a = await complete(url, turn1, 12);
  const b = await complete(url, turn1 + a.text + " And then the dog said:", 12);
  return {a, b};
}

for (const type of ["f32", "bf16", "q8_0", "q4_0"]) {
  await check(`--kv-type ${type}: cached follow-up equals cache off`, async () => {
    const on = await startServer(model, ["--kv-type", type]);
    const off = await startServer(model, ["--kv-type", type, "--prompt-cache-size", "0"]);
    try {
      assert(on.log().includes(`(${type})`), `memory plan does not name ${type}:\n${on.log()}`);
      const x = await twoTurns(on.url), y = await twoTurns(off.url);
      assertEq(x.a.text, y.a.text, "turn 1");
      assertEq(x.b.text, y.b.text, "turn 2");
      assert(x.b.cached >= 64, `turn 2 cached only ${x.b.cached} of ${x.b.prompt}`);
      assert(x.a.text.length > 0, "empty answer");
    } finally {
      await on.stop();
      await off.stop();
    }
  });
}

await check("--kv-type q4_0 with head size 16 is refused at start", async () => {
  const r = spawnSync(LARDER, ["serve", "--model", model16, "--port", "0", "--kv-type", "q4_0"], {encoding: "utf8", timeout: 30000});
  assert(r.status !== 0, "server started");
  assert(/multiple of the q4_0 block/.test(r.stderr), `message: ${r.stderr}`);
});

await check("--kv-type nonsense is refused", async () => {
  const r = spawnSync(LARDER, ["serve", "--model", model, "--port", "0", "--kv-type", "q5_k"], {encoding: "utf8", timeout: 30000});
  assert(r.status !== 0 && /not supported/.test(r.stderr), `status ${r.status}: ${r.stderr}`);
});

await check("--max-kv-size: a long sequence completes in a pool smaller than it", async () => {
  // 48-token window, pages of 8; the pool holds 128 tokens (one sequence at a
  // time); the prompt alone is ~400 tokens.
  const BYTES_PER_TOKEN = 2 * 2 * 1 * 64 * 2; // layers x K,V x kv heads x head x f16
  const budget = 128 * BYTES_PER_TOKEN;
  const flags = ["--max-kv-size", "48", "--keep", "4", "--page-tokens", "8", "--batch-tokens", "32",
    "--parallel", "1", "--kv-memory", String(budget)];
  const on = await startServer(model, flags);
  const off = await startServer(model, [...flags, "--prompt-cache-size", "0"]);
  try {
    let maxRunning = 0;
    const poll = setInterval(async () => {
      try {
        const m = await (await fetch(`${on.url}/metrics`)).text();
        const v = Number(/^larder_kv_pool_bytes_running (\S+)/m.exec(m)?.[1]);
        if (v > maxRunning) maxRunning = v;
      } catch {}
    }, 20);
    const long = "Once upon a time in a small town by the sea there lived an old fisherman. ".repeat(24);
    const x = await complete(on.url, long, 60);
    const x2 = await complete(on.url, long, 60);
    clearInterval(poll);
    const y = await complete(off.url, long, 60);
    assert(x.prompt > 300, `prompt of ${x.prompt} tokens`);
    assertEq(x.text, y.text, "window: cache on vs off");
    assertEq(x2.text, y.text, "window: second run (cached prefix) vs cache off");
    assert(x2.cached > 0 && x2.cached <= 48, `second run cached ${x2.cached} (at most the window)`);
    assert(maxRunning <= budget, `running KV ${maxRunning} > budget ${budget}`);
    assert(on.log().includes("rotating window"), "memory plan does not mention the window");
  } finally {
    await on.stop();
    await off.stop();
  }
});

await check("--keep >= --max-kv-size is refused", async () => {
  const r = spawnSync(LARDER, ["serve", "--model", model, "--port", "0", "--max-kv-size", "8", "--keep", "8"], {encoding: "utf8", timeout: 30000});
  assert(r.status !== 0 && /--keep/.test(r.stderr), `status ${r.status}: ${r.stderr}`);
});

done();
