// llama_cpu_variant.mjs — makes the oracle (llama.cpp through node-llama-cpp)
// run the CPU variant whose arithmetic larder's active kernels reproduce.
//
// Why: node-llama-cpp ships llama.cpp's CPU code built once per instruction
// set (bins/linux-x64/libggml-cpu-{haswell,skylakex,zen4,...}.so), and ggml
// loads the variant with the best score for the CPU. The variants round
// differently: the F32 matmul (llamafile's tinyBLAS) sums in 16 lanes in the
// AVX-512 ones and in 8 lanes in the AVX2 ones (haswell, alderlake). larder
// follows the order of its own level (src/backend/cpu/x86/cpu_dot_x86.inc), so on
// a machine with AVX-512, larder capped to AVX2 (LARDER_CPU=avx2, the second
// pass of tests/run.sh) must be compared with llama.cpp's haswell variant,
// which ggml would never pick there by itself.
//
// How: ggml scans the folder of the llama-addon.node that node-llama-cpp
// loads; node-llama-cpp finds that folder through its platform package
// @node-llama-cpp/linux-x64 (getBinsDir()). When a variant must be forced,
// a copy of that package is made in a temporary folder — its package.json
// and dist/ copied, every file of bins/linux-x64 linked except the other
// libggml-cpu-*.so — and a module resolve hook (tests/oracle/
// llama_cpu_variant_hook.mjs) sends the import of @node-llama-cpp/linux-x64
// there. Call useLarderMatchingVariant() before node-llama-cpp is imported.
//
// Levels as src/backend/cpu/cpu_features.c decides them, from /proc/cpuinfo:
// avx512 = avx2 fma f16c + avx512f bw vl dq vnni, avx2 = avx2 fma f16c,
// capped by LARDER_CPU (scalar | avx2 | avx512). Forced: haswell, when larder
// runs its AVX2 kernels on a CPU with avx512f. Otherwise ggml's own choice
// already sums as larder does (an AVX-512 variant for larder's AVX-512 level,
// haswell/alderlake for AVX2 without AVX-512). An AVX-512 CPU without VNNI
// (larder's AVX2 level, ggml would pick skylakex) gets haswell forced too.
// Not matched: larder's scalar level.
import {copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync} from "node:fs";
import {register} from "node:module";
import path from "node:path";
import os from "node:os";
import {fileURLToPath, pathToFileURL} from "node:url";

const LEVELS = ["scalar", "avx2", "avx512"];

function cpuFlags() {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags"));
    return new Set((line ?? "").split(":")[1]?.trim().split(/\s+/) ?? []);
  } catch { return new Set(); }
}

// larder's active kernel level: "scalar", "avx2" or "avx512".
export function larderCpuLevel(flags = cpuFlags(), cap = process.env.LARDER_CPU) {
  const has = (...f) => f.every((x) => flags.has(x));
  let level = 0;
  if (has("avx2", "fma", "f16c")) level = has("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni") ? 2 : 1;
  const c = LEVELS.indexOf(cap ?? "");
  return LEVELS[c >= 0 && c < level ? c : level];
}

// The llama.cpp CPU variant to force for larder's level on this CPU, or null
// when ggml's own choice already matches.
export function llamaVariantFor(level, flags = cpuFlags()) {
  return level === "avx2" && flags.has("avx512f") ? "haswell" : null;
}

let forced; // the variant forced in this process (undefined: not decided yet)

// Forces the matching variant when needed (once per process); returns its
// name or null. Throws when the variant's library is missing.
export function useLarderMatchingVariant() {
  if (forced !== undefined) return forced;
  const variant = llamaVariantFor(larderCpuLevel());
  forced = variant;
  if (!variant) return null;
  const pkgDir = path.dirname(path.dirname(fileURLToPath(import.meta.resolve("@node-llama-cpp/linux-x64"))));
  const bins = path.join(pkgDir, "bins", "linux-x64");
  const lib = `libggml-cpu-${variant}.so`;
  if (!existsSync(path.join(bins, lib))) throw new Error(`llama.cpp CPU variant ${lib} not found in ${bins}`);
  const base = process.env.TEST_TMP || os.tmpdir();
  const dir = mkdtempSync(path.join(base, `llama-cpu-${variant}-`));
  if (!process.env.TEST_TMP) process.on("exit", () => rmSync(dir, {recursive: true, force: true}));
  mkdirSync(path.join(dir, "dist"));
  mkdirSync(path.join(dir, "bins", "linux-x64"), {recursive: true});
  copyFileSync(path.join(pkgDir, "package.json"), path.join(dir, "package.json"));
  for (const f of readdirSync(path.join(pkgDir, "dist"))) copyFileSync(path.join(pkgDir, "dist", f), path.join(dir, "dist", f));
  for (const f of readdirSync(bins))
    if (!f.startsWith("libggml-cpu-") || f === lib) symlinkSync(path.join(bins, f), path.join(dir, "bins", "linux-x64", f));
  register("./llama_cpu_variant_hook.mjs", import.meta.url,
    {data: {specifier: "@node-llama-cpp/linux-x64", url: pathToFileURL(path.join(dir, "dist", "index.js")).href}});
  return variant;
}
