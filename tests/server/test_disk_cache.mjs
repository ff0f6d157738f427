// test_disk_cache.mjs — the disk tier (--cache-dir) through the real server:
//  * kill -9 in the middle of traffic, restart on the same directory: the
//    follow-up turns of the conversations served before are warm (cached
//    tokens from disk, time to first token <= 1/10 of a cold prefill) and
//    every answer equals a cache-off server's;
//  * a second server on the same directory is refused (the lock);
//  * a full disk (a 512 KiB tmpfs in a private mount namespace, ENOSPC): the
//    server keeps serving from memory, answers unchanged, write errors
//    counted.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { check, done, assert, assertEq, startServer, raw, freePort, LARDER, SHARED, TMP } from "./server_lib.mjs";

// Wider than the other server tests' model, so that a cold prefill costs
// what restoring its pages does not (2 KiB of KV per token).
const model = path.join(TMP, "disk.gguf");
execFileSync(LARDER, ["make-model", "--arch", "qwen2", "--vocab", path.join(SHARED, "vocab/ggml-vocab-qwen2.gguf"),
  "--chat-template", path.join(SHARED, "templates/Qwen-Qwen2.5-7B-Instruct.jinja"),
  "--dim", "256", "--ff", "768", "--heads", "4", "--kv-heads", "2", "--layers", "4",
  "--ctx", "8192", "--type", "f32", "--seed", "5", "--out", model], { stdio: "inherit" });
const system = "System: you are a coding agent. Read the files, then answer briefly. ".repeat(200);
const convo = (i) => `${system}\nUser ${i}: what does file ${i * 7919 % 1000} do? It holds ${"data ".repeat(60 + i)}\nAssistant:`;
const N = 3;

async function complete(url, prompt, maxTokens = 8) {
  const t0 = performance.now();
  const r = await raw(url, "POST", "/v1/completions", JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0 }));
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`status ${r.status}: ${r.text.slice(0, 300)}`);
  return { text: r.json.choices[0].text, cached: r.json.usage.prompt_tokens_details.cached_tokens, prompt: r.json.usage.prompt_tokens, ms };
}
const cacheStats = async (url) => (await raw(url, "GET", "/v1/cache")).json;
async function waitWritten(url) {
  for (let i = 0; i < 400; i++) {
    const st = await cacheStats(url);
    if (st.disk.queued_pages === 0 && st.disk.written_pages > 0) return st;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("the disk writer did not finish");
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// Reference: no cache at all. Turn 1, turn 2 (turn 1 + its answer + more),
// and the cold time of a one-token answer to each turn-2 prompt.
const common = ["--kv-memory", "64M", "--parallel", "2", "--page-tokens", "32"];
const ref = await startServer(model, [...common, "--prompt-cache-size", "0", "--no-prewarm"]);
const turn1 = [], turn2 = [], ref1 = [], ref2 = [], coldMs = [];
for (let i = 0; i < N; i++) {
  turn1.push(convo(i));
  const a = await complete(ref.url, turn1[i]);
  ref1.push(a.text);
  turn2.push(turn1[i] + a.text + `\nUser: and the next one, ${i}?\nAssistant:`);
  ref2.push((await complete(ref.url, turn2[i])).text);
  for (let k = 0; k < 3; k++) coldMs.push((await complete(ref.url, turn2[i], 1)).ms);
}
await ref.stop();

const dir = fs.mkdtempSync(path.join(TMP, "cache-dir-"));
const args = [...common, "--cache-dir", dir, "--cache-disk-bytes", "64M", "--no-prewarm"];
await check("restart_after_kill9_is_warm_and_answers_equal", async () => {
  const a = await startServer(model, args);
  for (let i = 0; i < N; i++) assertEq((await complete(a.url, turn1[i])).text, ref1[i], `turn 1 of ${i}`);
  const st = await waitWritten(a.url);
  assert(st.disk.files > 0 && st.disk.bytes <= st.disk.budget_bytes, JSON.stringify(st.disk));
  // mid-traffic: a long request is being computed when the process dies
  const inflight = raw(a.url, "POST", "/v1/completions", JSON.stringify({ prompt: convo(99) + "x ".repeat(900), max_tokens: 200, temperature: 0 })).catch(() => null);
  await new Promise((r) => setTimeout(r, 30));
  a.proc.kill("SIGKILL");
  await inflight;
  await a.stop();

  const b = await startServer(model, args);
  try {
    const st0 = await cacheStats(b.url);
    assert(st0.disk.files === st.disk.files, `files after restart ${st0.disk.files} vs ${st.disk.files} before`);
    assertEq(st0.disk.removed_bad_files, 0, "no file was half written");
    const warmMs = [];
    for (let i = 0; i < N; i++) {
      const first = await complete(b.url, turn2[i], 1); // the first follow-up after the restart
      warmMs.push(first.ms);
      assert(first.cached >= turn1[i].length / 8, `follow-up ${i}: cached ${first.cached} of ${first.prompt}`);
      assertEq((await complete(b.url, turn2[i])).text, ref2[i], `turn 2 of ${i}`);
    }
    const st1 = await cacheStats(b.url);
    assert(st1.disk.restored_pages > 0, JSON.stringify(st1.disk));
    const ratio = median(warmMs) / median(coldMs);
    console.log(`# first follow-up after kill -9: ${median(warmMs).toFixed(1)} ms vs cold ${median(coldMs).toFixed(1)} ms ` +
      `(ratio ${ratio.toFixed(3)}), ${st1.disk.restored_pages} pages restored, read ${(st1.disk.read_s_per_page * 1e6).toFixed(1)} us/page`);
    assert(ratio <= 0.1, `warm/cold ${ratio}`);
  } finally {
    await b.stop();
  }
});

await check("cache_dir_is_locked_to_one_server", async () => {
  const a = await startServer(model, args);
  try {
    let failed = false;
    try {
      const b = await startServer(model, args);
      await b.stop();
    } catch (e) {
      failed = /in use by another larder process/.test(String(e));
    }
    assert(failed, "a second server on the same --cache-dir started");
  } finally {
    await a.stop();
  }
});

// The server in a private mount namespace whose --cache-dir is a 512 KiB
// tmpfs, while --cache-disk-bytes allows far more: writes fail with ENOSPC.
async function startInTinyFs(extra) {
  const port = await freePort();
  const mnt = fs.mkdtempSync(path.join(TMP, "tinyfs-"));
  const logs = [];
  const proc = spawn("unshare", ["-rm", "sh", "-c", 'mount -t tmpfs -o size=512k tmpfs "$0" && exec "$@"', mnt,
    LARDER, "serve", "--model", model, "--host", "127.0.0.1", "--port", String(port), "--threads", "2",
    "--cache-dir", mnt, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (d) => logs.push(d.toString()));
  proc.stderr.on("data", (d) => logs.push(d.toString()));
  let exited = null;
  proc.on("exit", (code) => { exited = code; });
  const url = `http://127.0.0.1:${port}`;
  for (let t0 = Date.now(); ; ) {
    if (exited !== null) throw new Error(`server exited (${exited}): ${logs.join("")}`);
    try { if ((await fetch(url + "/health")).ok) break; } catch {}
    if (Date.now() - t0 > 60000) throw new Error("server did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, log: () => logs.join(""), stop: async () => { proc.kill("SIGTERM"); for (let i = 0; i < 100 && exited === null; i++) await new Promise((r) => setTimeout(r, 50)); if (exited === null) proc.kill("SIGKILL"); } };
}

await check("full_disk_keeps_serving_from_memory", async () => {
  const s = await startInTinyFs([...common, "--cache-disk-bytes", "64M", "--no-prewarm"]);
  try {
    for (let i = 0; i < N; i++) {
      assertEq((await complete(s.url, turn1[i])).text, ref1[i], `turn 1 of ${i}`);
      await waitWritten(s.url).catch(() => {});
      const b = await complete(s.url, turn2[i]);
      assertEq(b.text, ref2[i], `turn 2 of ${i}`);
      assert(b.cached > 0, "served from memory");
    }
    const st = await cacheStats(s.url);
    assert(st.disk.write_errors > 0, `no write failed: ${JSON.stringify(st.disk)}`);
    assert(/No space left on device/.test(s.log()), "ENOSPC logged");
    assert((await raw(s.url, "GET", "/health")).status === 200, "healthy");
  } finally {
    await s.stop();
  }
});
done();
